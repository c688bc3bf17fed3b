package cloudinit

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// vendorData is the platform's vendor-data: an empty cloud-config mapping.
//
// Vendor-data is where a platform puts defaults that the user's user-data
// overrides (and that a user can switch off with vendor_data: {enabled:
// false}), e.g. later installing and enabling qemu-guest-agent. We have no
// defaults yet. Writing an explicit no-op document rather than an empty file
// keeps the file's purpose visible in the seed and makes adding defaults a
// change of content only.
const vendorData = "#cloud-config\n{}\n"

// Render builds the seed for c. It is a pure function of c: the same Config
// always gives byte-identical files. Invalid input yields a *ValidationError.
func Render(c Config) (Seed, error) {
	if strings.TrimSpace(c.InstanceID) == "" {
		return Seed{}, invalid("instance-id", "empty", nil)
	}
	if strings.TrimSpace(c.Hostname) == "" {
		return Seed{}, invalid("hostname", "empty", nil)
	}
	keys := make([]sshKey, 0, len(c.SSHKeys))
	for i, k := range c.SSHKeys {
		id, err := parseSSHKey(fmt.Sprintf("ssh-keys[%d]", i), k)
		if err != nil {
			return Seed{}, err
		}
		keys = append(keys, sshKey{line: strings.TrimSpace(k), id: id})
	}
	ud, err := parseUserData(c.UserData)
	if err != nil {
		return Seed{}, err
	}

	meta, err := renderMetaData(c)
	if err != nil {
		return Seed{}, err
	}
	user, err := renderUserData(ud, c.Hostname, keys)
	if err != nil {
		return Seed{}, err
	}
	var netcfg []byte
	if len(c.NetworkConfig) > 0 {
		netcfg = append([]byte(nil), c.NetworkConfig...)
	}
	return Seed{
		MetaData:      meta,
		UserData:      user,
		VendorData:    []byte(vendorData),
		NetworkConfig: netcfg,
	}, nil
}

func renderMetaData(c Config) ([]byte, error) {
	md := struct {
		InstanceID    string `yaml:"instance-id"`
		LocalHostname string `yaml:"local-hostname"`
	}{c.InstanceID, c.Hostname}
	b, err := yaml.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("cloudinit: encode meta-data: %w", err)
	}
	return b, nil
}

// renderUserData merges the platform's settings into the user's cloud-config.
// A user script cannot be merged with, so it becomes the second part of a
// MIME multipart user-data whose first part is our cloud-config.
func renderUserData(ud userData, hostname string, keys []sshKey) ([]byte, error) {
	doc := ud.cloudConfig
	if doc == nil {
		doc = emptyDocument()
	}
	cc, err := mergeCloudConfig(doc, hostname, keys)
	if err != nil {
		return nil, err
	}
	if ud.script == "" {
		return cc, nil
	}
	return multipartUserData([]mimePart{
		{contentType: "text/cloud-config", filename: "cloud-config.yaml", body: cc},
		{contentType: "text/x-shellscript", filename: "user-script", body: []byte(ud.script)},
	}), nil
}
