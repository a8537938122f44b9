package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf16"

	"github.com/identitychain/auth/internal/quote"
)

// style paints text with ANSI colour when on; off, it returns text as is,
// so output to pipes, files and tests stays plain.
type style struct{ on bool }

func (a *app) style() style { return style{on: a.color} }

func (s style) paint(code, text string) string {
	if !s.on || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s style) bold(t string) string   { return s.paint("1", t) }
func (s style) red(t string) string    { return s.paint("31", t) }
func (s style) green(t string) string  { return s.paint("32", t) }
func (s style) yellow(t string) string { return s.paint("33", t) }
func (s style) dim(t string) string    { return s.paint("2", t) }

// table renders aligned columns. Colour applies to the header and to the
// last cell of a row only: tabwriter counts escape codes as width, and the
// last column is never padded, so painting it cannot shift the others.
type table struct {
	header []string
	rows   [][]string
	paints []func(string) string
}

// add appends a row; paint, if not nil, colours its last cell.
func (t *table) add(paint func(string) string, cells ...string) {
	t.rows = append(t.rows, cells)
	t.paints = append(t.paints, paint)
}

func (t *table) write(w io.Writer, s style) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	if t.header != nil {
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	}
	for i, r := range t.rows {
		// Cells carry tenant-written text: no control character reaches
		// the terminal, and no value floods it.
		for j, cell := range r {
			r[j] = quote.Clean(cell, quote.MaxErrorBytes)
		}
		t.rows[i] = r
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	all := strings.Split(buf.String(), "\n")
	i := 0
	if t.header != nil {
		b.WriteString(s.bold(strings.TrimRight(all[0], " ")) + "\n")
		i = 1
	}
	for r := range t.rows {
		line := strings.TrimRight(all[i+r], " ")
		if p := t.paints[r]; p != nil && s.on {
			last := t.rows[r][len(t.rows[r])-1]
			if strings.HasSuffix(line, last) {
				line = line[:len(line)-len(last)] + p(last)
			}
		}
		b.WriteString(line + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeJSON writes v indented, for scripts and jq. encoding/json escapes
// C0 controls only; every other rune a terminal could act on (C1 controls,
// bidi overrides, invalid bytes) is escaped too, which is still valid JSON
// because such runes can only stand inside strings.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := io.WriteString(w, escapeJSON(buf.String()))
	return err
}

func escapeJSON(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n' || strconv.IsPrint(r):
			b.WriteRune(r)
		case r > 0xffff:
			// JSON spells a rune outside the BMP as a surrogate pair.
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			// An invalid byte decodes as U+FFFD, which JSON can carry.
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// checkOutput validates an -o value.
func checkOutput(o string) error {
	switch o {
	case "table", "json":
		return nil
	}
	return usageError("invalid output format '%s': must be table or json", o)
}
