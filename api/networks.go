package api

import (
	"net/http"
	"net/netip"

	"github.com/go-chi/chi/v5"
	"github.com/limiquantix/limiquantix/netdev"
	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

func (s *Server) networkRoutes(r chi.Router) {
	r.Get("/networks", s.listNetworks)
	r.Post("/networks", s.createNetwork)
	r.Get("/networks/{name}", s.getNetwork)
	r.Delete("/networks/{name}", s.deleteNetwork)
	r.Get("/security-groups", s.listGroups)
	r.Post("/security-groups", s.createGroup)
	r.Get("/security-groups/{name}", s.getGroup)
	r.Put("/security-groups/{name}", s.replaceGroup)
	r.Delete("/security-groups/{name}", s.deleteGroup)
	r.Post("/security-groups/{name}/rules", s.addRule)
	r.Delete("/security-groups/{name}/rules/{id}", s.deleteRule)
	r.Post("/vms/{name}/nics", s.addNIC)
	r.Delete("/vms/{name}/nics/{nic}", s.removeNIC)
}

func (s *Server) addNIC(w http.ResponseWriter, r *http.Request) {
	var req NICRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	v, err := s.vms.AddNIC(r.Context(), chi.URLParam(r, "name"), vmm.NICRequest{Network: req.Network, IP: req.IP, SecurityGroups: req.SecurityGroups})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIVM(v, s.hostname))
}

func (s *Server) removeNIC(w http.ResponseWriter, r *http.Request) {
	v, err := s.vms.RemoveNIC(r.Context(), chi.URLParam(r, "name"), chi.URLParam(r, "nic"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIVM(v, s.hostname))
}

func (s *Server) needNets(w http.ResponseWriter, r *http.Request) bool {
	if s.nets == nil {
		writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "networking is not enabled on this host"))
		return false
	}
	return true
}

func toAPINetwork(n netdev.Network) Network {
	return Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, NAT: n.NAT, NICs: n.NICs}
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) {
	if !s.needNets(w, r) {
		return
	}
	nets, err := s.nets.Networks(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeList(w, nets, toAPINetwork)
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request) {
	if !s.needNets(w, r) {
		return
	}
	nets, err := s.nets.Networks(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	name := chi.URLParam(r, "name")
	for _, n := range nets {
		if n.Name == name {
			writeJSON(w, http.StatusOK, toAPINetwork(n))
			return
		}
	}
	writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "network %q not found", name))
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) {
	if !s.needNets(w, r) {
		return
	}
	var req CreateNetworkRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	spec := netdev.NetworkSpec{Name: req.Name, NAT: req.NAT}
	var err error
	if spec.Subnet, err = netip.ParsePrefix(req.Subnet); err != nil {
		writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "subnet %q: want an IPv4 prefix such as 10.20.0.0/24", req.Subnet))
		return
	}
	if req.Gateway != "" {
		if spec.Gateway, err = netip.ParseAddr(req.Gateway); err != nil {
			writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "gateway %q: not an IPv4 address", req.Gateway))
			return
		}
	}
	n, err := s.nets.CreateNetwork(r.Context(), spec)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/networks/"+n.Name)
	writeJSON(w, http.StatusCreated, toAPINetwork(n))
}

func (s *Server) deleteNetwork(w http.ResponseWriter, r *http.Request) {
	if !s.needNets(w, r) {
		return
	}
	if err := s.nets.DeleteNetwork(r.Context(), chi.URLParam(r, "name")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func toAPIGroup(g store.SecurityGroup) SecurityGroup {
	out := SecurityGroup{Name: g.Name, Rules: []SecurityRule{}}
	for _, r := range g.Rules {
		out.Rules = append(out.Rules, SecurityRule{ID: r.ID, Direction: r.Direction, Proto: r.Proto, PortFrom: r.PortFrom,
			PortTo: r.PortTo, CIDR: r.CIDR, FromGroup: r.RemoteGroup})
	}
	return out
}

func toRuleSpec(r SecurityRule) netdev.RuleSpec {
	return netdev.RuleSpec{Direction: r.Direction, Proto: r.Proto, PortFrom: r.PortFrom, PortTo: r.PortTo, CIDR: r.CIDR, RemoteGroup: r.FromGroup}
}

// writeGroup answers with one group's current rules.
func (s *Server) writeGroup(w http.ResponseWriter, r *http.Request, status int, name string) {
	groups, err := s.nets.Groups(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	for _, g := range groups {
		if g.Name == name {
			writeJSON(w, status, toAPIGroup(g))
			return
		}
	}
	writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "security group %q not found", name))
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	if !s.needNets(w, r) {
		return
	}
	groups, err := s.nets.Groups(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeList(w, groups, toAPIGroup)
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	if s.needNets(w, r) {
		s.writeGroup(w, r, http.StatusOK, chi.URLParam(r, "name"))
	}
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) {
	if !s.needNets(w, r) {
		return
	}
	var req CreateSecurityGroupRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.nets.CreateGroup(r.Context(), req.Name); err != nil {
		writeError(w, r, err)
		return
	}
	if len(req.Rules) > 0 {
		specs := make([]netdev.RuleSpec, 0, len(req.Rules))
		for _, rl := range req.Rules {
			specs = append(specs, toRuleSpec(rl))
		}
		if _, err := s.nets.ReplaceRules(r.Context(), req.Name, specs); err != nil {
			// The group was made for this request: take it back so a bad rule changes nothing.
			s.nets.DeleteGroup(r.Context(), req.Name)
			writeError(w, r, err)
			return
		}
	}
	w.Header().Set("Location", "/api/v1/security-groups/"+req.Name)
	s.writeGroup(w, r, http.StatusCreated, req.Name)
}

func (s *Server) replaceGroup(w http.ResponseWriter, r *http.Request) {
	if !s.needNets(w, r) {
		return
	}
	var req ReplaceSecurityGroupRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	name := chi.URLParam(r, "name")
	specs := make([]netdev.RuleSpec, 0, len(req.Rules))
	for _, rl := range req.Rules {
		specs = append(specs, toRuleSpec(rl))
	}
	if _, err := s.nets.ReplaceRules(r.Context(), name, specs); err != nil {
		writeError(w, r, err)
		return
	}
	s.writeGroup(w, r, http.StatusOK, name)
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if !s.needNets(w, r) {
		return
	}
	if err := s.nets.DeleteGroup(r.Context(), chi.URLParam(r, "name")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) addRule(w http.ResponseWriter, r *http.Request) {
	if !s.needNets(w, r) {
		return
	}
	var req SecurityRule
	if err := decodeJSON(w, r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	rule, err := s.nets.AddRule(r.Context(), chi.URLParam(r, "name"), toRuleSpec(req))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, SecurityRule{ID: rule.ID, Direction: rule.Direction, Proto: rule.Proto,
		PortFrom: rule.PortFrom, PortTo: rule.PortTo, CIDR: rule.CIDR, FromGroup: rule.RemoteGroup})
}

func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request) {
	if !s.needNets(w, r) {
		return
	}
	if err := s.nets.DeleteRule(r.Context(), chi.URLParam(r, "name"), chi.URLParam(r, "id")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
