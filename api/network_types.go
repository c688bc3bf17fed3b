package api

// Network is a managed network: a bridge with a subnet, a gateway address on the bridge,
// DHCP/DNS, and NAT to the host's uplink when nat is true.
type Network struct {
	Name    string `json:"name"`
	Bridge  string `json:"bridge"`
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
	NAT     bool   `json:"nat"`
	NICs    int    `json:"nics"`
}

// CreateNetworkRequest is the body of POST /api/v1/networks.
type CreateNetworkRequest struct {
	Name    string `json:"name"`
	Subnet  string `json:"subnet"`            // e.g. 10.20.0.0/24
	Gateway string `json:"gateway,omitempty"` // default: the subnet's first address
	NAT     bool   `json:"nat,omitempty"`
}

// SecurityGroup is a named set of rules. A NIC in no group, or in groups with no inbound
// rule, accepts nothing inbound but replies to its own traffic.
type SecurityGroup struct {
	Name  string         `json:"name"`
	Rules []SecurityRule `json:"rules"`
}

// SecurityRule allows traffic to (direction in) or from (out) a group's NICs.
type SecurityRule struct {
	ID        string `json:"id,omitempty"`
	Direction string `json:"direction"`           // in | out
	Proto     string `json:"proto"`               // tcp | udp | icmp | any
	PortFrom  int    `json:"port_from,omitempty"` // tcp/udp only; 0 = any
	PortTo    int    `json:"port_to,omitempty"`   // 0 = same as port_from
	CIDR      string `json:"cidr,omitempty"`      // peer prefix; default 0.0.0.0/0
	FromGroup string `json:"from_group,omitempty"`
}

// CreateSecurityGroupRequest is the body of POST /api/v1/security-groups.
type CreateSecurityGroupRequest struct {
	Name  string         `json:"name"`
	Rules []SecurityRule `json:"rules,omitempty"`
}

// ReplaceSecurityGroupRequest is the body of PUT /api/v1/security-groups/{name}: the whole
// rule set, applied atomically.
type ReplaceSecurityGroupRequest struct {
	Rules []SecurityRule `json:"rules"`
}
