package cloudinit

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

const sshKeysKey = "ssh_authorized_keys"

// sshKey is a validated authorized_keys line and its identity for dedup.
type sshKey struct {
	line string // trimmed line, as written to user-data
	id   string // "<type> <blob>"
}

// mergeCloudConfig sets the platform's settings in the user's cloud-config
// document and encodes it with the "#cloud-config" header. doc must come from
// parseCloudConfig (or emptyDocument) and is modified in place.
//
// The user's keys keep their order and position; hostname and
// preserve_hostname are overwritten in place if present, otherwise appended,
// followed by ssh_authorized_keys. The user's keys come first in
// ssh_authorized_keys; ours are appended unless the same key (type and blob)
// is already there.
func mergeCloudConfig(doc *yaml.Node, hostname string, keys []sshKey) ([]byte, error) {
	root := doc.Content[0]
	root.Style &^= yaml.FlowStyle

	setMappingValue(root, "hostname", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: hostname})
	setMappingValue(root, "preserve_hostname", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"})
	if len(keys) > 0 {
		appendSSHKeys(root, keys)
	}

	var buf bytes.Buffer
	buf.WriteString(cloudConfigHeader + "\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("cloudinit: encode user-data cloud-config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("cloudinit: encode user-data cloud-config: %w", err)
	}
	// Safety net: whatever the user's YAML looked like, what we hand to
	// cloud-init must parse.
	if err := yaml.Unmarshal(buf.Bytes(), new(any)); err != nil {
		return nil, fmt.Errorf("cloudinit: merged user-data cloud-config does not parse: %w", err)
	}
	return buf.Bytes(), nil
}

func appendSSHKeys(root *yaml.Node, keys []sshKey) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	switch v := mappingValue(root, sshKeysKey); {
	case v == nil || isNull(v):
	case v.Kind == yaml.SequenceNode:
		seq = v // append in place, keeping any anchor and comments
	default:
		// An alias: copy, so that the anchored list elsewhere is unchanged.
		seq.Content = append(seq.Content, resolve(v).Content...)
	}
	seq.Style &^= yaml.FlowStyle
	seen := make(map[string]bool, len(seq.Content)+len(keys))
	for _, item := range seq.Content {
		if item.Kind == yaml.ScalarNode {
			seen[keyIdentity(item.Value)] = true
		}
	}
	for _, k := range keys {
		if seen[k.id] {
			continue
		}
		seen[k.id] = true
		seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.line})
	}
	setMappingValue(root, sshKeysKey, seq)
}

// keyIdentity returns the dedup identity of a user-written key line; lines
// that do not parse are compared verbatim.
func keyIdentity(line string) string {
	if id, err := parseSSHKey("ssh-key", line); err == nil {
		return id
	}
	return line
}

// mappingValue returns the value node for key in mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setMappingValue replaces the value for key in mapping m, keeping its
// position, or appends key: v at the end.
func setMappingValue(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			// Aliases to the old value now refer to the new one; dropping
			// the anchor would leave them dangling.
			v.Anchor = m.Content[i+1].Anchor
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}
