package groups

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"herald/domain"
)

// ImportFormat is the body format of a member import.
type ImportFormat int

// The import formats. CSV has the recipient ID in its first column; a first
// line whose first column is "id", "recipient_id", "recipient" or "member"
// is a header and skipped. JSON lines hold one JSON string or one object
// with "recipient_id" (or "id") per line. Blank lines are skipped in both.
const (
	ImportCSV ImportFormat = iota + 1
	ImportJSONLines
)

// Import limits.
const (
	// MaxImportLineBytes bounds one line; longer lines are reported and
	// skipped.
	MaxImportLineBytes = 4096
	// MaxImportErrors bounds the line errors a report lists; the count is
	// always complete.
	MaxImportErrors = 1000
	// importChunk is how many recipient IDs one append adds.
	importChunk = 10_000
)

// LineError is one rejected line of an import.
type LineError struct {
	Line    int    `json:"line"`
	Problem string `json:"problem"`
}

// ImportReport says what an import did.
type ImportReport struct {
	// Lines counts the lines read, blank and header lines included.
	Lines int
	// Valid counts the lines holding a good recipient ID.
	Valid int
	// Added counts the members added; Valid - Added were members already
	// (or repeated in the body).
	Added int
	// Rejected counts the lines refused; Errors lists the first
	// MaxImportErrors of them in line order.
	Rejected int
	Errors   []LineError
	// Group is the group after the import.
	Group domain.Group
}

// ImportMembers reads recipient IDs from r in format, line by line without
// holding the body, and adds the valid ones to the group in appends of
// importChunk IDs; invalid lines are reported by number and skipped. The
// group must exist and not be archived before anything is read. Lines are
// parsed in full before the first append, so a body cut short (too large,
// connection lost) adds nothing; a failure while appending leaves the
// chunks before it added, and repeating the import is safe (members
// already there are skipped).
func (s *Service) ImportMembers(ctx context.Context, o Origin, id domain.GroupID, format ImportFormat, r io.Reader) (ImportReport, error) {
	g, err := s.Group(ctx, id)
	if err != nil {
		return ImportReport{}, err
	}
	if g.Archived() {
		return ImportReport{}, fmt.Errorf("import members of %s: %w", id, domain.ErrGroupArchived)
	}
	var rep ImportReport
	var ids []string
	seen := map[string]struct{}{}
	err = scanLines(r, func(n int, line []byte, tooLong bool) {
		rep.Lines = n
		reject := func(problem string) {
			rep.Rejected++
			if len(rep.Errors) < MaxImportErrors {
				rep.Errors = append(rep.Errors, LineError{Line: n, Problem: problem})
			}
		}
		if tooLong {
			reject(fmt.Sprintf("line longer than %d bytes", MaxImportLineBytes))
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return
		}
		var member, problem string
		if format == ImportCSV {
			member, problem = csvFirstField(line)
			if n == 1 && problem == "" && isHeader(member) {
				return
			}
		} else {
			member, problem = jsonLineMember(line)
		}
		if problem == "" {
			problem = domain.MemberIDProblem(member)
		}
		if problem != "" {
			reject(problem)
			return
		}
		rep.Valid++
		if _, dup := seen[member]; !dup {
			seen[member] = struct{}{}
			ids = append(ids, member)
		}
	})
	if err != nil {
		return ImportReport{}, err
	}
	rep.Group = g
	for start := 0; start < len(ids); start += importChunk {
		res, err := s.ChangeMembers(ctx, o, id, ids[start:min(start+importChunk, len(ids))], nil)
		if err != nil {
			return rep, fmt.Errorf("import members of %s: after %d added: %w", id, rep.Added, err)
		}
		rep.Added += res.Added
		rep.Group = res.Group
	}
	return rep, nil
}

// scanLines calls fn with each line of r (numbered from 1, without its line
// ending); a line over MaxImportLineBytes is passed once with tooLong set.
func scanLines(r io.Reader, fn func(n int, line []byte, tooLong bool)) error {
	br := bufio.NewReaderSize(r, MaxImportLineBytes+2)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", n, err)
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		fn(n, line, tooLong)
		if err != nil {
			return nil
		}
	}
}

func isHeader(s string) bool {
	switch strings.ToLower(s) {
	case "id", "recipient_id", "recipient", "member":
		return true
	}
	return false
}

// csvFirstField returns the first field of a CSV line: quoted (with ""
// for a quote) or up to the first comma, surrounding spaces trimmed.
func csvFirstField(line []byte) (string, string) {
	s := strings.TrimLeft(string(line), " \t")
	if !strings.HasPrefix(s, `"`) {
		field, _, _ := strings.Cut(s, ",")
		if strings.Contains(field, `"`) {
			return "", `a quote inside an unquoted field`
		}
		return strings.TrimSpace(field), ""
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		if rest := strings.TrimLeft(s[i+1:], " \t"); rest != "" && rest[0] != ',' {
			return "", "text after a closing quote"
		}
		return b.String(), ""
	}
	return "", "a quoted field is not closed on its line"
}

// jsonLineMember reads a JSON lines entry: "id" or {"recipient_id": "id"}.
func jsonLineMember(line []byte) (string, string) {
	line = bytes.TrimSpace(line)
	var s string
	if line[0] == '"' {
		if err := json.Unmarshal(line, &s); err != nil {
			return "", "not a JSON string"
		}
		return s, ""
	}
	var obj struct {
		RecipientID *string `json:"recipient_id"`
		ID          *string `json:"id"`
	}
	if err := json.Unmarshal(line, &obj); err != nil {
		return "", "not a JSON object or string"
	}
	switch {
	case obj.RecipientID != nil:
		return *obj.RecipientID, ""
	case obj.ID != nil:
		return *obj.ID, ""
	}
	return "", `the object has no "recipient_id"`
}
