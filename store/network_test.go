package store

import (
	"context"
	"errors"
	"testing"
)

func TestNetworksGroupsNICs(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateNetwork(ctx, Network{Name: "prod", Bridge: "lqb-prod", Subnet: "10.20.0.0/24", Gateway: "10.20.0.1", NAT: true, MAC: "fe:00:00:00:00:01"}))
	if err := db.CreateNetwork(ctx, Network{Name: "prod", Bridge: "x", Subnet: "10.21.0.0/24", Gateway: "10.21.0.1"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate network: %v", err)
	}
	must(db.CreateSecurityGroup(ctx, "web"))
	must(db.CreateSecurityGroup(ctx, "db"))
	must(db.AddRule(ctx, Rule{ID: "r1", Group: "web", Direction: "in", Proto: "tcp", PortFrom: 80, PortTo: 80, CIDR: "0.0.0.0/0"}))
	must(db.AddRule(ctx, Rule{ID: "r2", Group: "db", Direction: "in", Proto: "tcp", PortFrom: 5432, PortTo: 5432, RemoteGroup: "web"}))
	if err := db.AddRule(ctx, Rule{ID: "r3", Group: "nope", Direction: "in", Proto: "any"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rule for missing group: %v", err)
	}
	must(db.CreateImage(ctx, Image{Name: "img", Format: "qcow2", Path: "/x"}))
	must(db.CreateVM(ctx, VM{UUID: "u1", Name: "vm1", Image: "img", Spec: []byte("{}"), State: "stopped"}))
	must(db.CreateVM(ctx, VM{UUID: "u2", Name: "vm2", Image: "img", Spec: []byte("{}"), State: "stopped"}))
	must(db.AddNICs(ctx, []NIC{{Tap: "t1", VMUUID: "u1", Network: "prod", MAC: "52:54:00:00:00:01", IP: "10.20.0.2", Groups: []string{"web"}}}))

	tests := []struct {
		name string
		nics []NIC
		want error
	}{
		{"address taken", []NIC{{Tap: "t2", VMUUID: "u2", Network: "prod", MAC: "52:54:00:00:00:02", IP: "10.20.0.2"}}, ErrConflict},
		{"mac taken", []NIC{{Tap: "t2", VMUUID: "u2", Network: "prod", MAC: "52:54:00:00:00:01", IP: "10.20.0.3"}}, ErrConflict},
		{"missing network", []NIC{{Tap: "t2", VMUUID: "u2", Network: "nope", MAC: "52:54:00:00:00:02", IP: "10.20.0.3"}}, ErrNotFound},
		{"missing group", []NIC{{Tap: "t2", VMUUID: "u2", Network: "prod", MAC: "52:54:00:00:00:02", IP: "10.20.0.3", Groups: []string{"nope"}}}, ErrNotFound},
		{"second of two fails: none kept", []NIC{
			{Tap: "t2", VMUUID: "u2", Network: "prod", MAC: "52:54:00:00:00:02", IP: "10.20.0.3"},
			{Tap: "t3", VMUUID: "u2", Index: 1, Network: "prod", MAC: "52:54:00:00:00:03", IP: "10.20.0.2"},
		}, ErrConflict},
	}
	for _, tt := range tests {
		if err := db.AddNICs(ctx, tt.nics); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	nics, err := db.NICs(ctx)
	if err != nil || len(nics) != 1 || nics[0].VMName != "vm1" || len(nics[0].Groups) != 1 {
		t.Fatalf("NICs = %+v, %v", nics, err)
	}
	if err := db.DeleteNetwork(ctx, "prod"); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete network in use: %v", err)
	}
	if err := db.DeleteSecurityGroup(ctx, "web"); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete group in use by a NIC and a rule: %v", err)
	}
	groups, err := db.SecurityGroups(ctx)
	if err != nil || len(groups) != 2 || len(groups[1].Rules) != 1 {
		t.Fatalf("groups after refused delete = %+v, %v", groups, err)
	}
	must(db.DeleteVM(ctx, "u1")) // cascades to its NICs
	must(db.DeleteSecurityGroup(ctx, "db"))
	must(db.DeleteSecurityGroup(ctx, "web"))
	must(db.DeleteNetwork(ctx, "prod"))
}
