package api

import (
	"context"
	"reflect"
	"testing"
)

func TestClientNetworkCalls(t *testing.T) {
	network := `{"name":"prod","bridge":"lqbr1","subnet":"10.20.0.0/24","gateway":"10.20.0.1","nat":true,"nics":2}`
	wantNetwork := Network{Name: "prod", Bridge: "lqbr1", Subnet: "10.20.0.0/24", Gateway: "10.20.0.1", NAT: true, NICs: 2}
	group := `{"name":"web","rules":[{"id":"ab12","direction":"in","proto":"tcp","port_from":80,"port_to":80,"cidr":"0.0.0.0/0"}]}`
	wantGroup := SecurityGroup{Name: "web", Rules: []SecurityRule{{ID: "ab12", Direction: "in", Proto: "tcp", PortFrom: 80, PortTo: 80, CIDR: "0.0.0.0/0"}}}
	vm := `{"name":"web1","nics":[{"network":"prod","mac":"52:54:00:00:00:01","ip":"10.20.0.5","tap":"lqt1","security_groups":["web"],"guest_ips":["10.20.0.5/24"]}]}`
	wantVM := VM{Name: "web1", NICs: []NIC{{Network: "prod", MAC: "52:54:00:00:00:01", IP: "10.20.0.5", Tap: "lqt1",
		SecurityGroups: []string{"web"}, GuestIPs: []string{"10.20.0.5/24"}}}}

	tests := []struct {
		name   string
		call   func(context.Context, *Client) (any, error)
		status int
		resp   string

		wantMethod, wantPath string
		wantBody             string // JSON, compared semantically; "" = empty
		want                 any
	}{
		{
			name:       "list networks",
			call:       func(ctx context.Context, c *Client) (any, error) { return c.Networks(ctx) },
			status:     200,
			resp:       "[" + network + "]",
			wantMethod: "GET", wantPath: "/api/v1/networks",
			want: []Network{wantNetwork},
		},
		{
			name:       "get network escapes name",
			call:       func(ctx context.Context, c *Client) (any, error) { return c.Network(ctx, "a b/c") },
			status:     200,
			resp:       network,
			wantMethod: "GET", wantPath: "/api/v1/networks/a%20b%2Fc",
			want: wantNetwork,
		},
		{
			name: "create network",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateNetwork(ctx, CreateNetworkRequest{Name: "prod", Subnet: "10.20.0.0/24", NAT: true})
			},
			status:     201,
			resp:       network,
			wantMethod: "POST", wantPath: "/api/v1/networks",
			wantBody: `{"name":"prod","subnet":"10.20.0.0/24","nat":true}`,
			want:     wantNetwork,
		},
		{
			name: "create network with gateway, without NAT",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateNetwork(ctx, CreateNetworkRequest{Name: "back", Subnet: "10.30.0.0/24", Gateway: "10.30.0.254"})
			},
			status:     201,
			resp:       network,
			wantMethod: "POST", wantPath: "/api/v1/networks",
			wantBody: `{"name":"back","subnet":"10.30.0.0/24","gateway":"10.30.0.254"}`,
		},
		{
			name:       "delete network",
			call:       func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteNetwork(ctx, "prod") },
			status:     204,
			wantMethod: "DELETE", wantPath: "/api/v1/networks/prod",
		},
		{
			name:       "list security groups",
			call:       func(ctx context.Context, c *Client) (any, error) { return c.SecurityGroups(ctx) },
			status:     200,
			resp:       "[" + group + "]",
			wantMethod: "GET", wantPath: "/api/v1/security-groups",
			want: []SecurityGroup{wantGroup},
		},
		{
			name:       "get security group",
			call:       func(ctx context.Context, c *Client) (any, error) { return c.SecurityGroup(ctx, "web") },
			status:     200,
			resp:       group,
			wantMethod: "GET", wantPath: "/api/v1/security-groups/web",
			want: wantGroup,
		},
		{
			name: "create security group",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateSecurityGroup(ctx, CreateSecurityGroupRequest{Name: "web"})
			},
			status:     201,
			resp:       `{"name":"web","rules":[]}`,
			wantMethod: "POST", wantPath: "/api/v1/security-groups",
			wantBody: `{"name":"web"}`,
			want:     SecurityGroup{Name: "web", Rules: []SecurityRule{}},
		},
		{
			name: "create security group with rules",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateSecurityGroup(ctx, CreateSecurityGroupRequest{Name: "web",
					Rules: []SecurityRule{{Direction: "in", Proto: "icmp", FromGroup: "web"}}})
			},
			status:     201,
			resp:       group,
			wantMethod: "POST", wantPath: "/api/v1/security-groups",
			wantBody: `{"name":"web","rules":[{"direction":"in","proto":"icmp","from_group":"web"}]}`,
			want:     wantGroup,
		},
		{
			name: "replace security group",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ReplaceSecurityGroup(ctx, "web", ReplaceSecurityGroupRequest{
					Rules: []SecurityRule{{Direction: "in", Proto: "tcp", PortFrom: 80, CIDR: "0.0.0.0/0"}}})
			},
			status:     200,
			resp:       group,
			wantMethod: "PUT", wantPath: "/api/v1/security-groups/web",
			wantBody: `{"rules":[{"direction":"in","proto":"tcp","port_from":80,"cidr":"0.0.0.0/0"}]}`,
			want:     wantGroup,
		},
		{
			name: "replace security group with nothing sends []",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ReplaceSecurityGroup(ctx, "web", ReplaceSecurityGroupRequest{})
			},
			status:     200,
			resp:       `{"name":"web","rules":[]}`,
			wantMethod: "PUT", wantPath: "/api/v1/security-groups/web",
			wantBody: `{"rules":[]}`,
			want:     SecurityGroup{Name: "web", Rules: []SecurityRule{}},
		},
		{
			name:       "delete security group",
			call:       func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteSecurityGroup(ctx, "web") },
			status:     204,
			wantMethod: "DELETE", wantPath: "/api/v1/security-groups/web",
		},
		{
			name: "add rule",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.AddRule(ctx, "web", SecurityRule{Direction: "out", Proto: "udp", PortFrom: 53, PortTo: 53, CIDR: "10.0.0.0/8"})
			},
			status:     201,
			resp:       `{"id":"cd34","direction":"out","proto":"udp","port_from":53,"port_to":53,"cidr":"10.0.0.0/8"}`,
			wantMethod: "POST", wantPath: "/api/v1/security-groups/web/rules",
			wantBody: `{"direction":"out","proto":"udp","port_from":53,"port_to":53,"cidr":"10.0.0.0/8"}`,
			want:     SecurityRule{ID: "cd34", Direction: "out", Proto: "udp", PortFrom: 53, PortTo: 53, CIDR: "10.0.0.0/8"},
		},
		{
			name:       "delete rule",
			call:       func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteRule(ctx, "web", "cd34") },
			status:     204,
			wantMethod: "DELETE", wantPath: "/api/v1/security-groups/web/rules/cd34",
		},
		{
			name: "create vm without nics field: default network",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateVM(ctx, CreateVMRequest{Name: "web1", Image: "debian-12"})
			},
			status:     201,
			resp:       vm,
			wantMethod: "POST", wantPath: "/api/v1/vms",
			wantBody: `{"name":"web1","image":"debian-12"}`,
			want:     wantVM,
		},
		{
			name: "create vm with empty nics sends []",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateVM(ctx, CreateVMRequest{Name: "web1", Image: "debian-12", NICs: []NICRequest{}})
			},
			status:     201,
			resp:       `{"name":"web1"}`,
			wantMethod: "POST", wantPath: "/api/v1/vms",
			wantBody: `{"name":"web1","image":"debian-12","nics":[]}`,
			want:     VM{Name: "web1"},
		},
		{
			name: "create vm with nics",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateVM(ctx, CreateVMRequest{Name: "web1", Image: "debian-12", Start: true, NICs: []NICRequest{
					{Network: "prod", SecurityGroups: []string{"web"}},
					{Network: "back", IP: "10.30.0.5"},
				}})
			},
			status:     201,
			resp:       vm,
			wantMethod: "POST", wantPath: "/api/v1/vms",
			wantBody: `{"name":"web1","image":"debian-12","start":true,"nics":[{"network":"prod","security_groups":["web"]},{"network":"back","ip":"10.30.0.5"}]}`,
			want:     wantVM,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := clientFakeServer(t, tt.status, "application/json", tt.resp)
			got, err := tt.call(t.Context(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if rec.method != tt.wantMethod || rec.path != tt.wantPath {
				t.Errorf("request = %s %s, want %s %s", rec.method, rec.path, tt.wantMethod, tt.wantPath)
			}
			if rec.auth != "Bearer "+clientTestToken {
				t.Errorf("Authorization = %q", rec.auth)
			}
			if !clientJSONEqual(t, rec.body, []byte(tt.wantBody)) {
				t.Errorf("body = %s, want %s", rec.body, tt.wantBody)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestClientNetworkNotFound(t *testing.T) {
	c, _ := clientFakeServer(t, 404, "application/json", `{"error":{"code":"not_found","message":"networking is not enabled on this host"}}`)
	if _, err := c.Networks(t.Context()); !IsNotFound(err) {
		t.Errorf("err = %v, want not_found", err)
	}
}
