package cloudinit

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxUserData caps user-supplied user-data, in bytes.
const MaxUserData = 64 << 10

const (
	cloudConfigHeader = "#cloud-config"
	scriptHeader      = "#!"
)

// userData is parsed user-supplied user-data. At most one field is set.
type userData struct {
	cloudConfig *yaml.Node // the YAML document, without the header line
	script      string     // a "#!" script, verbatim
}

// ValidateUserData accepts the forms of user-supplied user-data that [Render]
// understands:
//   - empty (or only whitespace);
//   - "#cloud-config" followed by a single YAML document that is a mapping or
//     empty, without duplicate keys, whose ssh_authorized_keys (if any) is a list;
//   - a script starting with "#!", passed through unchanged.
//
// Anything else, or more than [MaxUserData] bytes, is an error matching
// [ErrInvalid].
func ValidateUserData(s string) error {
	_, err := parseUserData(s)
	return err
}

func parseUserData(s string) (userData, error) {
	const field = "user-data"
	switch {
	case len(s) > MaxUserData:
		return userData{}, invalid(field,
			fmt.Sprintf("%d bytes exceeds the limit of %d bytes", len(s), MaxUserData), nil)
	case strings.TrimSpace(s) == "":
		return userData{}, nil
	case strings.HasPrefix(s, cloudConfigHeader):
		doc, err := parseCloudConfig(s)
		if err != nil {
			return userData{}, err
		}
		return userData{cloudConfig: doc}, nil
	case strings.HasPrefix(s, scriptHeader):
		return userData{script: s}, nil
	default:
		return userData{}, invalid(field, `must be empty, start with "#cloud-config" `+
			`followed by a YAML mapping, or be a script starting with "#!"`, nil)
	}
}

// parseCloudConfig parses "#cloud-config\n<yaml>" into a YAML document node
// whose single child is a mapping (empty if the document was empty).
func parseCloudConfig(s string) (*yaml.Node, error) {
	const field = "user-data"
	// Drop the header line: yaml.v3 would keep it as a comment, and the
	// renderer writes its own.
	body := ""
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		body = s[i+1:]
	}

	dec := yaml.NewDecoder(strings.NewReader(body))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return emptyDocument(), nil
		}
		return nil, invalid(field, "cloud-config is not valid YAML", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, invalid(field, "cloud-config must be a single YAML document", err)
	}
	// Decoding into a generic value catches what the Node tree does not:
	// duplicate keys (cloud-init would silently keep the last one, which
	// could override the hostname we set) and bad anchors or merges.
	var generic any
	if err := doc.Decode(&generic); err != nil {
		return nil, invalid(field, "cloud-config is not valid YAML", err)
	}

	if len(doc.Content) == 0 {
		doc.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.MappingNode:
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		doc.Content[0] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map",
			HeadComment: root.HeadComment, LineComment: root.LineComment, FootComment: root.FootComment}
	default:
		return nil, invalid(field, "cloud-config must be a YAML mapping, not "+kindName(root), nil)
	}

	if v := mappingValue(doc.Content[0], sshKeysKey); v != nil && !isNull(v) && resolve(v).Kind != yaml.SequenceNode {
		return nil, invalid(field, sshKeysKey+" must be a list, not "+kindName(resolve(v)), nil)
	}
	return &doc, nil
}

func emptyDocument() *yaml.Node {
	return &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		return "a scalar (" + n.ShortTag() + ")"
	}
	return "an unexpected YAML node"
}
