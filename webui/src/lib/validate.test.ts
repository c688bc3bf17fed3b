import { describe, expect, it } from "vitest";
import { parseSSHKeys, validateCloudConfig, validateName, validateSSHKeys } from "./validate";

describe("validateName", () => {
  it.each(["a", "web-1", "0", "a".repeat(63), "db-primary-2"])("accepts %s", (n) => expect(validateName(n)).toBeNull());
  it.each([
    ["", "required"],
    ["-web", "lowercase"],
    ["Web", "lowercase"],
    ["web_1", "lowercase"],
    ["web.1", "lowercase"],
    ["a".repeat(64), "63"],
    ["wéb", "lowercase"],
  ])("refuses %j", (n, why) => expect(validateName(n)).toContain(why));
});

describe("validateCloudConfig", () => {
  it.each([
    ["empty", ""],
    ["blank", "  \n"],
    ["header only", "#cloud-config\n"],
    ["header without newline", "#cloud-config"],
    ["mapping", "#cloud-config\npackages:\n  - nginx\nruncmd:\n  - [sh, -c, 'echo hi']\n"],
    ["crlf", "#cloud-config\r\nhostname: web\r\n"],
    ["script", "#!/bin/sh\necho hi: [\n"],
  ])("accepts %s", (_n, text) => expect(validateCloudConfig(text)).toBeNull());

  it.each([
    ["no header", "packages: [nginx]\n", "must start with"],
    ["header not first", "\n#cloud-config\nfoo: 1\n", "must start with"],
    ["header with suffix", "#cloud-configx\nfoo: 1\n", "must start with"],
    ["unclosed flow sequence", "#cloud-config\npackages: [nginx\n", "Invalid YAML"],
    ["bad indentation", "#cloud-config\nusers:\n  - name: a\n   shell: /bin/sh\n", "Invalid YAML"],
    ["duplicate key", "#cloud-config\nhostname: a\nhostname: b\n", "Invalid YAML"],
    ["a list", "#cloud-config\n- a\n- b\n", "mapping"],
    ["a scalar", "#cloud-config\njust text\n", "mapping"],
  ])("refuses %s", (_n, text, why) => expect(validateCloudConfig(text)).toContain(why));

  it("says where the YAML error is", () => {
    expect(validateCloudConfig("#cloud-config\nfoo: bar\nbaz: [1\n")).toMatch(/line \d+, column \d+/);
  });
});

describe("SSH keys", () => {
  it("takes one key per line, skipping blanks and comments", () => {
    expect(parseSSHKeys("ssh-ed25519 AAAA a@b\n\n# old\r\n  ssh-rsa AAAB c@d  \n")).toEqual(["ssh-ed25519 AAAA a@b", "ssh-rsa AAAB c@d"]);
  });
  it("checks their shape", () => {
    expect(validateSSHKeys("ssh-ed25519 AAAAC3Nza user@host\necdsa-sha2-nistp256 AAAAE2V=")).toBeNull();
    expect(validateSSHKeys("ssh-ed25519 AAAAC3Nza\nnot a key")).toContain("Key 2");
  });
});
