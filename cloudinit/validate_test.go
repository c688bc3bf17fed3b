package cloudinit

import (
	"errors"
	"strings"
	"testing"
)

const (
	testKeyEd25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEw1rV0yu23L/W4hOF5AlQSvimjCjhVolz6osM0lExG8 test-ed25519@lq"
	testKeyRSA     = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDspb+AECrL7y6+aEnPYjqIV2sXXwfXDOOU1OcNq9QnX40tl86Qlh5ni9ZNgCIfb5C1JFkfjffvp+kPr3S0d9m0nU0zTqdBxzgsCCkjC0SvUhom5RifJau+ZN45glQZbJPI7+I7H5aElJtGKo6HNQqVUU488VIIAveQX2zLf9gjWQ== test-rsa@lq"
	testKeyECDSA   = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIK24QXRPmmFnOLpqQ8P0635h3SZ+9M3DiKqkIXRfxjObwyDw8XCH9bRd6HRsObi1Sj2zw8ukPUTwfYQAbUJF1o= test-ecdsa@lq"
)

// checkValidation asserts that err is nil when wantErr is "", and otherwise a
// *ValidationError matching ErrInvalid whose message contains wantErr.
func checkValidation(t *testing.T, err error, wantErr string) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var ve *ValidationError
	switch {
	case err == nil:
		t.Fatalf("no error, want one containing %q", wantErr)
	case !errors.Is(err, ErrInvalid) || !errors.As(err, &ve):
		t.Fatalf("error %v (%T) is not an ErrInvalid *ValidationError", err, err)
	case !strings.Contains(err.Error(), wantErr):
		t.Fatalf("error %q does not contain %q", err, wantErr)
	}
}

func TestValidateUserData(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"empty", "", ""},
		{"whitespace only", " \n\t\n", ""},
		{"cloud-config mapping", "#cloud-config\npackages: [htop]\nruncmd:\n  - echo hi\n", ""},
		{"cloud-config empty document", "#cloud-config\n", ""},
		{"cloud-config header without newline", "#cloud-config", ""},
		{"cloud-config only comments", "#cloud-config\n# nothing yet\n", ""},
		{"cloud-config explicit null", "#cloud-config\n~\n", ""},
		{"cloud-config CRLF", "#cloud-config\r\npackages: [htop]\r\n", ""},
		{"cloud-config keys list", "#cloud-config\nssh_authorized_keys:\n  - " + testKeyEd25519 + "\n", ""},
		{"cloud-config invalid YAML", "#cloud-config\npackages: [htop\n", "cloud-config is not valid YAML"},
		{"cloud-config bad indentation", "#cloud-config\na: 1\n b: 2\n", "cloud-config is not valid YAML"},
		{"cloud-config list not mapping", "#cloud-config\n- a\n- b\n", "must be a YAML mapping, not a list"},
		{"cloud-config scalar not mapping", "#cloud-config\nhello\n", "must be a YAML mapping, not a scalar"},
		{"cloud-config duplicate key", "#cloud-config\nhostname: a\nhostname: b\n", "already defined"},
		{"cloud-config two documents", "#cloud-config\na: 1\n---\nb: 2\n", "single YAML document"},
		{"cloud-config keys not a list", "#cloud-config\nssh_authorized_keys: " + testKeyEd25519 + "\n", "ssh_authorized_keys must be a list"},
		{"script", "#!/bin/sh\necho hi\n", ""},
		{"script with binary bytes", "#!/bin/sh\n\x00\xff\n", ""},
		{"no header", "packages: [htop]\n", `start with "#cloud-config"`},
		{"leading space before header", " #cloud-config\n", `or be a script starting with "#!"`},
		{"include format unsupported", "#include\nhttp://example.com/ud\n", `must be empty`},
		{"too big", "#!/bin/sh\n" + strings.Repeat("#", MaxUserData), "exceeds the limit of 65536 bytes"},
		{"exactly max", "#!/bin/sh\n" + strings.Repeat("#", MaxUserData-len("#!/bin/sh\n")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidation(t, ValidateUserData(tt.in), tt.wantErr)
		})
	}
}

func TestValidateSSHKey(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"ed25519", testKeyEd25519, ""},
		{"rsa", testKeyRSA, ""},
		{"ecdsa", testKeyECDSA, ""},
		{"no comment", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEw1rV0yu23L/W4hOF5AlQSvimjCjhVolz6osM0lExG8", ""},
		{"comment with spaces", testKeyEd25519 + " laptop at home", ""},
		{"surrounding whitespace and newline", "  " + testKeyEd25519 + "\n", ""},
		{"empty", "", "empty key"},
		{"blank", " \n", "empty key"},
		{"two keys on two lines", testKeyEd25519 + "\n" + testKeyRSA, "single line"},
		{"carriage return inside", "ssh-ed25519 AAAA\rfoo", "single line"},
		{"garbage", "hello world", `unsupported key type "hello"`},
		{"dsa unsupported", "ssh-dss AAAAB3NzaC1kc3MAAACBAP== old", `unsupported key type "ssh-dss"`},
		{"options prefix", `command="ls" ` + testKeyEd25519, `unsupported key type "command=\"ls\""`},
		{"private key pasted", "-----BEGIN OPENSSH PRIVATE KEY-----", "unsupported key type"},
		{"type only", "ssh-ed25519", "missing base64 key data"},
		{"bad base64", "ssh-ed25519 not*base64", "not valid base64"},
		{"blob too short", "ssh-ed25519 AAA=", "too short"},
		{"type and blob disagree", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIEw1rV0yu23L/W4hOF5AlQSvimjCjhVolz6osM0lExG8", "does not match key type ssh-rsa"},
		{"length overflows blob", "ssh-ed25519 /////w==", "does not match key type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidation(t, ValidateSSHKey(tt.in), tt.wantErr)
		})
	}
}

func TestRenderErrors(t *testing.T) {
	base := Config{InstanceID: "6f1c2a4e-3b5d-4e8f-9a0b-1c2d3e4f5a6b", Hostname: "vm"}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"missing instance-id", func(c *Config) { c.InstanceID = "" }, "instance-id: empty"},
		{"missing hostname", func(c *Config) { c.Hostname = " " }, "hostname: empty"},
		{"bad key names index", func(c *Config) { c.SSHKeys = []string{testKeyEd25519, "nope"} }, "ssh-keys[1]"},
		{"bad user-data", func(c *Config) { c.UserData = "hello" }, "invalid user-data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mod(&c)
			_, err := Render(c)
			checkValidation(t, err, tt.wantErr)
		})
	}
}
