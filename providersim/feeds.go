package providersim

import (
	"fmt"
	"regexp"
	"strings"

	"boxoffice/provider"
)

// Feed is one more provider that a Server simulates beside the one at Path: its own
// simulator, with the Server's settings but its own format, served at FeedPath(Name).
type Feed struct {
	Name   string // a path segment: 1 to 64 letters, digits, '.', '_' or '-'
	Format string // provider.FormatPlanList, FormatEventList or FormatJSON
}

// FeedPath returns the path a feed named name is served at: the provider's Path under
// the feed's name, such as /acme/api/events.
func FeedPath(name string) string { return "/" + name + Path }

// feedName is what a feed may be called: the rule of the names of PROVIDERS, so that a
// feed's name can name its provider.
var feedName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseFeeds reads Config.Feeds: entries name=format separated by white space or
// commas, such as "acme=json legacy=eventList". A name must not repeat. Errors name
// the entry by its position.
func ParseFeeds(s string) ([]Feed, error) {
	var out []Feed
	seen := map[string]bool{}
	entries := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	for i, entry := range entries {
		name, format, ok := strings.Cut(entry, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("entry %d %q: want name=format", i+1, entry)
		case !feedName.MatchString(name):
			return nil, fmt.Errorf("entry %d %q: name: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", i+1, entry)
		case seen[name]:
			return nil, fmt.Errorf("entry %d %q: name %q repeats", i+1, entry, name)
		}
		if _, known := formatFiles[format]; !known {
			return nil, fmt.Errorf("entry %d %q: format: unknown value %q (want %s, %s or %s)", i+1, entry, format,
				provider.FormatPlanList, provider.FormatEventList, provider.FormatJSON)
		}
		seen[name] = true
		out = append(out, Feed{Name: name, Format: format})
	}
	return out, nil
}
