/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import { readFileSync } from "node:fs";
import type { Plugin } from "vite";

// dist/ is gitignored except dist/README, which is committed so that `go:embed all:dist`
// always has a directory to embed (a Go build without a built UI still compiles). Vite
// empties dist/ before a build; this plugin writes the README back, byte for byte.
function keepDistReadme(): Plugin {
  let source = "";
  return {
    name: "keep-dist-readme",
    apply: "build",
    buildStart() {
      try {
        source = readFileSync(new URL("./dist/README", import.meta.url), "utf8");
      } catch {
        source = README;
      }
    },
    generateBundle() {
      this.emitFile({ type: "asset", fileName: "README", source });
    },
  };
}

const README = `This directory holds the built web UI that lqd embeds (go:embed all:dist).
Only this README is committed; build the UI with \`make ui\` or
\`cd webui && npm ci && npm run build\`, then rebuild lqd.
`;

// `npm run dev` proxies the API to a running lqd: LQ_URL=http://127.0.0.1:7480 npm run dev
const target = process.env.LQ_URL ?? "http://127.0.0.1:7480";

export default defineConfig({
  plugins: [react(), keepDistReadme()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // noVNC uses top-level await.
    target: "es2022",
    assetsDir: "assets",
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      "/api": { target, ws: true, changeOrigin: true },
      "/healthz": { target },
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
  },
});
