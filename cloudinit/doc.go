// Package cloudinit builds NoCloud seeds: meta-data, user-data, vendor-data,
// network-config, and the ISO that carries them.
//
// A seed is rebuilt at every VM start from the VM's current spec. [Render] is a
// pure function of [Config]; [WriteISO] puts the result on disk as an ISO 9660
// image labelled "cidata", which cloud-init's NoCloud datasource finds by label
// and mounts. The instance-id is the VM's uuid and never changes, so cloud-init's
// per-instance modules run once, on first boot, while per-boot modules see the
// current hostname and keys.
//
// Validation errors (bad user-data, bad SSH keys, missing fields) are
// *[ValidationError] values that match [ErrInvalid] under errors.Is, so callers
// can report them as client errors.
package cloudinit
