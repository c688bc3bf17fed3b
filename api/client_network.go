package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// Client calls of the networking API: networks, security groups and their rules.

func escapedNetworkPath(name string) string { return "/api/v1/networks/" + url.PathEscape(name) }
func escapedGroupPath(name string) string   { return "/api/v1/security-groups/" + url.PathEscape(name) }

// Networks lists the managed networks.
func (c *Client) Networks(ctx context.Context) ([]Network, error) {
	var out []Network
	err := c.do(ctx, http.MethodGet, "/api/v1/networks", nil, nil, &out)
	return out, err
}

// Network gets one network by name.
func (c *Client) Network(ctx context.Context, name string) (Network, error) {
	var out Network
	err := c.do(ctx, http.MethodGet, escapedNetworkPath(name), nil, nil, &out)
	return out, err
}

// CreateNetwork creates a network: its bridge, DHCP/DNS and, with req.NAT, NAT to the uplink.
func (c *Client) CreateNetwork(ctx context.Context, req CreateNetworkRequest) (Network, error) {
	var out Network
	err := c.do(ctx, http.MethodPost, "/api/v1/networks", nil, req, &out)
	return out, err
}

// DeleteNetwork removes a network that no NIC uses.
func (c *Client) DeleteNetwork(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, escapedNetworkPath(name), nil, nil, nil)
}

// SecurityGroups lists the security groups with their rules.
func (c *Client) SecurityGroups(ctx context.Context) ([]SecurityGroup, error) {
	var out []SecurityGroup
	err := c.do(ctx, http.MethodGet, "/api/v1/security-groups", nil, nil, &out)
	return out, err
}

// SecurityGroup gets one security group with its rules.
func (c *Client) SecurityGroup(ctx context.Context, name string) (SecurityGroup, error) {
	var out SecurityGroup
	err := c.do(ctx, http.MethodGet, escapedGroupPath(name), nil, nil, &out)
	return out, err
}

// CreateSecurityGroup creates a group, with req.Rules if any (all or nothing).
func (c *Client) CreateSecurityGroup(ctx context.Context, req CreateSecurityGroupRequest) (SecurityGroup, error) {
	var out SecurityGroup
	err := c.do(ctx, http.MethodPost, "/api/v1/security-groups", nil, req, &out)
	return out, err
}

// ReplaceSecurityGroup sets a group's whole rule set atomically and returns the group.
// Nil req.Rules is sent as [] and empties the group.
func (c *Client) ReplaceSecurityGroup(ctx context.Context, name string, req ReplaceSecurityGroupRequest) (SecurityGroup, error) {
	if req.Rules == nil {
		req.Rules = []SecurityRule{}
	}
	var out SecurityGroup
	err := c.do(ctx, http.MethodPut, escapedGroupPath(name), nil, req, &out)
	return out, err
}

// DeleteSecurityGroup removes a group that no NIC and no other group's rule uses.
func (c *Client) DeleteSecurityGroup(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, escapedGroupPath(name), nil, nil, nil)
}

// AddRule adds one rule to a group and returns it as stored, with its ID.
func (c *Client) AddRule(ctx context.Context, group string, rule SecurityRule) (SecurityRule, error) {
	var out SecurityRule
	err := c.do(ctx, http.MethodPost, escapedGroupPath(group)+"/rules", nil, rule, &out)
	return out, err
}

// DeleteRule removes a rule from a group by its ID.
func (c *Client) DeleteRule(ctx context.Context, group, id string) error {
	return c.do(ctx, http.MethodDelete, escapedGroupPath(group)+"/rules/"+url.PathEscape(id), nil, nil, nil)
}

// MarshalJSON writes a CreateVMRequest as its struct tags say, except that a non-nil empty
// NICs is sent as "nics": [] (a VM without NICs) rather than left out (which means one NIC
// on the default network): omitempty cannot tell the two apart.
func (r CreateVMRequest) MarshalJSON() ([]byte, error) {
	type plain CreateVMRequest // without this method
	if r.NICs == nil || len(r.NICs) > 0 {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		plain
		NICs []NICRequest `json:"nics"` // shadows plain's omitempty field
	}{plain(r), []NICRequest{}})
}

// AddNIC gives a VM another NIC (hotplugged when it runs).
func (c *Client) AddNIC(ctx context.Context, vm string, req NICRequest) (VM, error) {
	var v VM
	err := c.do(ctx, http.MethodPost, "/api/v1/vms/"+url.PathEscape(vm)+"/nics", nil, req, &v)
	return v, err
}

// RemoveNIC takes a NIC (index, MAC or tap) away from a VM (hot-unplugged when it runs).
func (c *Client) RemoveNIC(ctx context.Context, vm, nic string) (VM, error) {
	var v VM
	err := c.do(ctx, http.MethodDelete, "/api/v1/vms/"+url.PathEscape(vm)+"/nics/"+url.PathEscape(nic), nil, nil, &v)
	return v, err
}
