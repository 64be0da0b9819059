package providersim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Content is a document the simulator can serve.
type Content int

// The documents the simulator serves.
const (
	Sample1   Content = 1 // the provider's response 1
	Sample2   Content = 2 // response 2, derived from the legacy format
	Sample3   Content = 3 // response 3, derived from the legacy format
	Generated Content = 4 // the synthetic catalog as of the call's number
)

// String returns the content's name in a sequence: "1", "2", "3" or "synthetic".
func (c Content) String() string {
	switch c {
	case Sample1, Sample2, Sample3:
		return strconv.Itoa(int(c))
	case Generated:
		return "synthetic"
	}
	return "Content(" + strconv.Itoa(int(c)) + ")"
}

// StepKind says how the simulator answers one call.
type StepKind int

// The ways to answer a call. Every kind but StepStatus serves, spoils or delays a
// Content.
const (
	// StepServe serves the content whole, or 304 when the client has it already.
	StepServe StepKind = iota
	// StepMalformed serves the content with a mismatched closing tag in its middle,
	// so the document is not well-formed XML. It has no ETag.
	StepMalformed
	// StepTruncated serves the first part of the content, cut inside a tag, and ends
	// the body cleanly: the document is cut, the HTTP exchange is not. It has no ETag.
	StepTruncated
	// StepStatus answers the step's Status with a short text body.
	StepStatus
	// StepSlow waits Config.SlowDelay, or until the client goes away, then serves the
	// content like StepServe.
	StepSlow
	// StepHang sends the headers and part of the content, then waits until the client
	// goes away or the Server is closed.
	StepHang
	// StepAbort sends the headers and part of the content, then drops the connection,
	// so the client sees the body cut short by the network.
	StepAbort
)

// String returns the kind's name in a sequence, such as "malformed".
func (k StepKind) String() string {
	switch k {
	case StepServe:
		return "serve"
	case StepMalformed:
		return "malformed"
	case StepTruncated:
		return "truncated"
	case StepStatus:
		return "status"
	case StepSlow:
		return "slow"
	case StepHang:
		return "hang"
	case StepAbort:
		return "abort"
	}
	return "StepKind(" + strconv.Itoa(int(k)) + ")"
}

// Step is how the simulator answers one call: a step of a sequence, or what any
// mode does for a call once faults are applied (see Server.Step).
type Step struct {
	Kind    StepKind // how the call is answered
	Content Content  // the document served, spoiled or delayed; kept but unused by StepStatus
	Status  int      // the status code of StepStatus
}

// String returns the step as ParseSequence reads it, with its content spelled out:
// "2", "synthetic", "malformed:3", "503".
func (s Step) String() string {
	switch s.Kind {
	case StepServe:
		return s.Content.String()
	case StepStatus:
		return strconv.Itoa(s.Status)
	}
	return s.Kind.String() + ":" + s.Content.String()
}

// ParseSequence reads a comma-separated script of steps, such as
// "1,2,malformed,500,slow,3". The steps are:
//
//   - 1, 2, 3: serve that sample (StepServe).
//   - synthetic: serve the synthetic catalog as of the call's number.
//   - malformed, truncated, slow, hang, abort: StepMalformed and so on, applied to the
//     content of the nearest earlier step that has one (sample 1 for the first step),
//     or to the content named after a colon: "slow:2", "truncated:synthetic".
//   - a status code from 300 to 599, such as 500 or 503: answer it (StepStatus).
//
// Spaces around steps are ignored and names are case-insensitive.
func ParseSequence(s string) ([]Step, error) {
	var steps []Step
	content := Sample1
	for i, tok := range strings.Split(s, ",") {
		step, err := parseStep(strings.ToLower(strings.TrimSpace(tok)), content)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", i+1, err)
		}
		content = step.Content
		steps = append(steps, step)
	}
	return steps, nil
}

// parseStep reads one step; content is the one a step without its own inherits.
func parseStep(tok string, content Content) (Step, error) {
	if tok == "" {
		return Step{}, errors.New("empty step")
	}
	name, arg, hasArg := strings.Cut(tok, ":")
	if c, ok := parseContent(name); ok {
		if hasArg {
			return Step{}, fmt.Errorf("%q: content %s takes no argument", tok, name)
		}
		return Step{Kind: StepServe, Content: c}, nil
	}
	if code, err := strconv.Atoi(name); err == nil {
		if hasArg {
			return Step{}, fmt.Errorf("%q: a status takes no argument", tok)
		}
		if code < 300 || code > 599 {
			return Step{}, fmt.Errorf("status must be between 300 and 599: %d", code)
		}
		return Step{Kind: StepStatus, Status: code, Content: content}, nil
	}
	kind, ok := spoilKind(name)
	if !ok {
		return Step{}, fmt.Errorf("unknown step %q (want 1, 2, 3, synthetic, malformed, truncated, slow, hang, abort or a status code)", tok)
	}
	if hasArg {
		c, ok := parseContent(arg)
		if !ok {
			return Step{}, fmt.Errorf("%q: unknown content %q (want 1, 2, 3 or synthetic)", tok, arg)
		}
		content = c
	}
	return Step{Kind: kind, Content: content}, nil
}

// spoilKind returns the kind of a step that spoils or delays a content.
func spoilKind(name string) (StepKind, bool) {
	for _, k := range []StepKind{StepMalformed, StepTruncated, StepSlow, StepHang, StepAbort} {
		if k.String() == name {
			return k, true
		}
	}
	return 0, false
}

func parseContent(s string) (Content, bool) {
	switch s {
	case "1":
		return Sample1, true
	case "2":
		return Sample2, true
	case "3":
		return Sample3, true
	case "synthetic":
		return Generated, true
	}
	return 0, false
}
