package cloudinit

// Config is everything a seed is built from.
type Config struct {
	// InstanceID is the VM's uuid. It must stay the same across starts so that
	// cloud-init's per-instance modules run only once.
	InstanceID string
	// Hostname is the VM name; it becomes local-hostname and hostname.
	Hostname string
	// SSHKeys are OpenSSH authorized_keys lines for the default user; each must
	// pass [ValidateSSHKey].
	SSHKeys []string
	// UserData is optional user-supplied user-data: "#cloud-config" YAML, a
	// "#!" script, or empty. See [ValidateUserData].
	UserData string
	// NetworkConfig is an optional, already rendered network-config (v2 YAML).
	// It is copied verbatim; nil or empty means the seed carries none and
	// cloud-init falls back to its default (DHCP on the first NIC).
	NetworkConfig []byte
}

// Seed holds the files of a NoCloud seed, as they go on the ISO.
type Seed struct {
	MetaData      []byte
	UserData      []byte
	VendorData    []byte
	NetworkConfig []byte // nil when absent
}
