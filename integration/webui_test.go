package integration

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWebUI drives the embedded web UI in headless Chromium (webui/e2e/e2e.mjs): log in,
// create a VM from the tiny image with the wizard, watch it reach running, use both
// consoles, take and revert a snapshot, delete the VM. It needs node, Debian's chromium,
// webui/node_modules (npm ci) and a UI built into the lqd under test (make ui); without
// them it skips. Screenshots go to $LQ_E2E_ARTIFACTS (default webui/e2e/artifacts).
func TestWebUI(t *testing.T) {
	webui, err := filepath.Abs(filepath.Join("..", "webui"))
	if err != nil {
		t.Fatal(err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	for what, path := range map[string]string{
		"chromium (apt-get install chromium)":     chromium,
		"webui/node_modules (cd webui && npm ci)": filepath.Join(webui, "node_modules", "playwright-core"),
		"a built UI (make ui, then rebuild lqd)":  filepath.Join(webui, "dist", "index.html"),
		"webui/e2e/e2e.mjs":                       filepath.Join(webui, "e2e", "e2e.mjs"),
	} {
		if _, err := os.Stat(path); err != nil {
			need(t, "web UI e2e needs %s: %v", what, err)
		}
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		need(t, "web UI e2e needs node and npm")
	}

	data, run := newDirs(t)
	d := startLQD(t, data, run)
	// The binary embeds whatever webui/dist held when it was built.
	res, err := d.client.HTTPClient.Get(d.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if bytes.Contains(page, []byte("not built")) {
		need(t, "lqd was built without the UI: run make ui before the tests")
	}
	importTiny(t, d)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Chromium runs in lqd's network namespace, where its 127.0.0.1 address lives.
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", d.ns, npm, "run", "--silent", "e2e")
	cmd.Dir = webui
	cmd.Env = append(os.Environ(), "LQ_URL="+d.url, "LQ_TOKEN="+d.token, "CHROMIUM="+chromium)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		t.Log(line)
	}
	if err != nil {
		t.Fatalf("npm run e2e: %v\nlqd log:\n%s", err, d.log())
	}
}

// need skips a test whose prerequisites are missing, or fails it where the suite must run
// whole (LQ_REQUIRE_INTEGRATION=1, as make test and CI set).
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("LQ_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
