package vmm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/limiquantix/limiquantix/qmp"
)

// agentProbeTimeout bounds how long an operation waits to learn whether an agent answers.
const agentProbeTimeout = 3 * time.Second

// agentConn returns the run's guest-agent connection, dialling it on first use. qemu's
// agent socket takes one client, so the run keeps one and shares it.
func (r *run) agentConn(ctx context.Context) (*qmp.Agent, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.agent != nil {
		return r.agent, nil
	}
	a, err := qmp.DialAgent(ctx, r.agentPath)
	if err != nil {
		return nil, err
	}
	r.agent = a
	return a, nil
}

// agentIfAlive returns the agent if it answers a ping quickly, else nil.
func (vm *machine) agentIfAlive(ctx context.Context, r *run) *qmp.Agent {
	if r == nil {
		return nil
	}
	a, err := r.agentConn(ctx)
	if err != nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, agentProbeTimeout)
	defer cancel()
	if err := a.Ping(pctx); err != nil {
		return nil
	}
	return a
}

// pollAgent refreshes the guest facts while the run lasts.
func (vm *machine) pollAgent(r *run) {
	m := vm.m
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-r.exited:
			return
		case <-t.C:
		}
		if vm.State() == StateRunning {
			ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
			if g, err := vm.readGuest(ctx, r); err == nil {
				vm.mu.Lock()
				if vm.run == r {
					vm.guest = g
				}
				vm.mu.Unlock()
			}
			cancel()
		}
		t.Reset(m.cfg.AgentPoll)
	}
}

func (vm *machine) readGuest(ctx context.Context, r *run) (*GuestInfo, error) {
	a := vm.agentIfAlive(ctx, r)
	if a == nil {
		return nil, ErrAgent
	}
	g := &GuestInfo{UpdatedAt: time.Now()}
	if info, err := a.Info(ctx); err == nil {
		g.AgentVersion = info.Version
	}
	var err error
	if g.OS, err = a.OSInfo(ctx); err != nil {
		return nil, err
	}
	if g.Hostname, err = a.HostName(ctx); err != nil {
		return nil, err
	}
	if g.Interfaces, err = a.NetworkInterfaces(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// Exec runs a program in the guest through the agent and waits for it to finish.
func (m *Manager) Exec(ctx context.Context, name string, argv []string, input []byte) (qmp.ExecResult, error) {
	if len(argv) == 0 || argv[0] == "" {
		return qmp.ExecResult{}, invalid("exec: no command")
	}
	vm, err := m.get(name)
	if err != nil {
		return qmp.ExecResult{}, err
	}
	if s := vm.State(); s != StateRunning {
		return qmp.ExecResult{}, fmt.Errorf("%w: vm %q is %s: exec needs it running", ErrConflict, name, s)
	}
	a := vm.agentIfAlive(ctx, vm.currentRun())
	if a == nil {
		return qmp.ExecResult{}, fmt.Errorf("%w: vm %q: no qemu-guest-agent answers (is it installed and running in the guest?)", ErrAgent, name)
	}
	res, err := a.Run(ctx, argv[0], argv[1:], input)
	if err != nil {
		var qe *qmp.Error
		if errors.As(err, &qe) {
			return qmp.ExecResult{}, fmt.Errorf("%w: exec %s: %s", ErrInvalid, argv[0], qe.Desc)
		}
		return qmp.ExecResult{}, fmt.Errorf("vm %q: exec: %w", name, err)
	}
	return res, nil
}

// RefreshGuest asks the agent for fresh facts now (used by "show"), if the guest has one.
func (m *Manager) RefreshGuest(ctx context.Context, name string) (VM, error) {
	vm, err := m.get(name)
	if err != nil {
		return VM{}, err
	}
	vm.mu.Lock()
	known := vm.guest != nil
	vm.mu.Unlock()
	// Only a guest whose agent has answered before is asked now: one without an agent
	// would cost every "show" the whole ping timeout. The poller finds new agents.
	if r := vm.currentRun(); r != nil && known && vm.State() == StateRunning {
		if g, err := vm.readGuest(ctx, r); err == nil {
			vm.mu.Lock()
			if vm.run == r {
				vm.guest = g
			}
			vm.mu.Unlock()
		}
	}
	return vm.view(m.cfg.Host.Accel), nil
}
