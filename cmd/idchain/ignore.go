package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// ignoreFileName is the file at the root of a directory given to lint that
// lists what lint must not read, one gitignore-like glob a line.
const ignoreFileName = ".idchainignore"

// ignoreRule is one line of a .idchainignore, or one --exclude, read as
// .gitignore reads its lines: '*', '?' and '[...]' match within a path
// segment, '**' matches any number of segments, a pattern without a '/'
// (but at its end) matches a name at any depth, one with a '/' matches
// from the root, a trailing '/' matches directories only, and a leading
// '!' includes again what an earlier line excluded (not in a directory
// excluded as a whole, which lint does not enter).
type ignoreRule struct {
	segments []string
	negate   bool
	dirOnly  bool
}

type ignoreRules []ignoreRule

// parseIgnoreRules reads patterns, from source ("--exclude", or a file),
// skipping blank lines and '#' comments.
func parseIgnoreRules(lines []string, source string) (ignoreRules, error) {
	var rules ignoreRules
	for i, line := range lines {
		r, ok, err := parseIgnoreRule(line)
		if err != nil {
			where := source
			if source != "--exclude" {
				where = fmt.Sprintf("%s line %d", source, i+1)
			}
			return nil, fmt.Errorf("invalid pattern '%s' in %s: %w", line, where, err)
		}
		if ok {
			rules = append(rules, r)
		}
	}
	return rules, nil
}

func parseIgnoreRule(line string) (ignoreRule, bool, error) {
	// Trailing blanks end nothing, unless escaped.
	for strings.HasSuffix(line, " ") && !strings.HasSuffix(line, "\\ ") {
		line = line[:len(line)-1]
	}
	if line == "" || strings.HasPrefix(line, "#") {
		return ignoreRule{}, false, nil
	}
	var r ignoreRule
	switch {
	case strings.HasPrefix(line, "!"):
		r.negate, line = true, line[1:]
	case strings.HasPrefix(line, "\\!"), strings.HasPrefix(line, "\\#"):
		line = line[1:]
	}
	line = strings.TrimPrefix(line, "./")
	if strings.HasSuffix(line, "/") {
		r.dirOnly, line = true, strings.TrimRight(line, "/")
	}
	anchored := strings.Contains(line, "/")
	line = strings.TrimPrefix(line, "/")
	if line == "" {
		return ignoreRule{}, false, errors.New("it names no path")
	}
	r.segments = strings.Split(line, "/")
	if !anchored {
		r.segments = append([]string{"**"}, r.segments...)
	}
	for _, s := range r.segments {
		if _, err := path.Match(s, ""); err != nil {
			return ignoreRule{}, false, err
		}
	}
	return r, true, nil
}

// readIgnoreFile reads the rules of a .idchainignore, or none when there
// is no such file.
func readIgnoreFile(file string) (ignoreRules, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read '%s': %w", file, errors.Unwrap(err))
	}
	return parseIgnoreRules(strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n"), file)
}

// excludes reports whether the rules exclude p, a slash-separated path
// relative to where the rules apply: the last rule that matches decides.
func (rules ignoreRules) excludes(p string, isDir bool) bool {
	if len(rules) == 0 {
		return false
	}
	segments := strings.Split(p, "/")
	excluded := false
	for _, r := range rules {
		if r.dirOnly && !isDir {
			continue
		}
		if matchSegments(r.segments, segments) {
			excluded = !r.negate
		}
	}
	return excluded
}

// matchSegments matches path segments against pattern segments, '**'
// matching any number of them.
func matchSegments(pattern, segments []string) bool {
	for len(pattern) > 0 {
		if pattern[0] == "**" {
			for len(pattern) > 0 && pattern[0] == "**" {
				pattern = pattern[1:]
			}
			if len(pattern) == 0 {
				return true
			}
			for i := range segments {
				if matchSegments(pattern, segments[i:]) {
					return true
				}
			}
			return false
		}
		if len(segments) == 0 {
			return false
		}
		if ok, _ := path.Match(pattern[0], segments[0]); !ok {
			return false
		}
		pattern, segments = pattern[1:], segments[1:]
	}
	return len(segments) == 0
}
