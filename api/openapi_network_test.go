package api_test

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/limiquantix/limiquantix/api"
)

// TestOpenAPINetworkSchemas: the network and security-group schemas name exactly the JSON
// fields of their Go types.
func TestOpenAPINetworkSchemas(t *testing.T) {
	f := newFixture(t)
	doc := loadOpenAPI(t, f)
	for name, v := range map[string]any{
		"Network": api.Network{}, "CreateNetworkRequest": api.CreateNetworkRequest{},
		"SecurityGroup": api.SecurityGroup{}, "SecurityRule": api.SecurityRule{},
		"CreateSecurityGroupRequest": api.CreateSecurityGroupRequest{}, "ReplaceSecurityGroupRequest": api.ReplaceSecurityGroupRequest{},
		"NIC": api.NIC{}, "NICRequest": api.NICRequest{},
	} {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("no schema %s", name)
			continue
		}
		var got, want []string
		for k := range s.Properties {
			got = append(got, k)
		}
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			if n, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ","); n != "" && n != "-" {
				want = append(want, n)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("schema %s: %v; Go type: %v", name, got, want)
		}
	}
}
