package vmm

import "testing"

func TestChooseAccel(t *testing.T) {
	tests := []struct {
		name, req string
		probe     KVMProbe
		want      string
		wantErr   bool
	}{
		{"auto with real kvm", "auto", KVMProbe{DevKVMUsable: true}, AccelKVM, false},
		{"auto on a PVM-only host", "auto", KVMProbe{DevKVMUsable: true, PVMLoaded: true}, AccelTCG, false},
		{"auto without /dev/kvm", "auto", KVMProbe{}, AccelTCG, false},
		{"empty means auto", "", KVMProbe{DevKVMUsable: true}, AccelKVM, false},
		{"tcg asked", "tcg", KVMProbe{DevKVMUsable: true}, AccelTCG, false},
		{"kvm asked and usable", "kvm", KVMProbe{DevKVMUsable: true, PVMLoaded: true}, AccelKVM, false},
		{"kvm asked, none", "kvm", KVMProbe{}, "", true},
		{"unknown", "hvf", KVMProbe{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := ChooseAccel(tt.req, tt.probe)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ChooseAccel(%q, %+v) = %q, %v; want %q, err=%v", tt.req, tt.probe, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCPUModel(t *testing.T) {
	if got := (Host{Accel: AccelKVM}).CPUModel(); got != "host" {
		t.Errorf("kvm cpu model = %q", got)
	}
	if got := (Host{Accel: AccelTCG}).CPUModel(); got != "max" {
		t.Errorf("tcg cpu model = %q", got)
	}
}
