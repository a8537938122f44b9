package main

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// A GitOps repository rendered by kustomize is megabytes of YAML, and
// yaml.v3 reads it at 80-150 ns a byte: 24,000 ServiceAccounts in 5.8 MB
// take 0.5-1 s to parse alone, above lint's budget of 20 µs a
// ServiceAccount. Almost all of it is the block subset that kubectl,
// kustomize and people write: block mappings and sequences, one-line plain
// and quoted scalars, literal blocks ('|', '|-'). docStream reads that
// subset itself, document by document, into the very nodes yaml.v3 would
// return (kind, style, value, line and column; comments are not kept and a
// plain scalar's Tag is left for Node.ShortTag to resolve), and hands any
// document with anything else (flow collections, anchors, tags, folded or
// multi-line scalars, tabs, CRs, non-ASCII text...) to yaml.v3, from the
// document's first line to the end of the file, so that yaml.v3 reads it
// exactly as it would in the whole stream. FuzzDocStream checks that the
// two agree on any input.

// docStream yields the documents of a YAML stream in order.
type docStream struct {
	src string
	// off is the offset of the next document's first line; line is its
	// line number (1-based).
	off, line int
	// v3 is set when the whole stream is yaml.v3's: it has directives
	// ('%YAML', '%TAG') or document end markers ('...'), which change how
	// the next document is read, or a byte order mark.
	v3 *yaml.Decoder
	// v3Offset is the number of lines before the text v3 reads.
	v3Offset int

	lines []lineRec // of the current document, reused
	// nodes and ptrs are slabs the fast path takes nodes and the Content
	// of collections from, and stack holds the children of the
	// collections it is reading: a ServiceAccount is 20 nodes.
	nodes slab[yaml.Node]
	ptrs  slab[*yaml.Node]
	stack []*yaml.Node
	// queue holds what yaml.v3 read from a document's text beyond its
	// first document: nothing, or the error it stopped at.
	queue    []*yaml.Node
	queueErr error

	// fast and slow count the documents each path read, for the tests.
	fast, slow int
	// reuse makes the fast path build each document in the memory of the
	// one before, which is then no longer valid: for a reader that is done
	// with a document when it asks for the next, it saves allocating and
	// collecting 3 KB a ServiceAccount.
	reuse bool
}

func newDocStream(src string) *docStream {
	s := &docStream{src: src, line: 1}
	if strings.HasPrefix(src, "\ufeff") || strings.HasPrefix(src, "\xff\xfe") || strings.HasPrefix(src, "\xfe\xff") {
		s.v3 = yaml.NewDecoder(strings.NewReader(src))
	}
	return s
}

// lineRec is one line of a document.
type lineRec struct {
	start, end int // offsets of the line in src, end at its '\n' or EOF
	indent     int // leading spaces
	kind       uint8
}

const (
	lineContent uint8 = iota
	lineBlank         // spaces only
	lineComment       // spaces, then '#'
)

// next returns the next document, io.EOF after the last, or yaml.v3's
// error for a document it cannot read (its line counted from the start of
// the stream); the stream cannot go on after an error. A document that is
// empty or holds comments only is skipped.
func (s *docStream) next() (*yaml.Node, error) {
	if s.v3 != nil {
		var doc yaml.Node
		if err := s.v3.Decode(&doc); err != nil {
			return nil, shiftError(err, s.v3Offset)
		}
		shiftLines(&doc, s.v3Offset)
		return &doc, nil
	}
	if len(s.queue) > 0 {
		doc := s.queue[0]
		s.queue = s.queue[1:]
		return doc, nil
	}
	if s.queueErr != nil {
		return nil, s.queueErr
	}
	if s.reuse {
		s.nodes.reset()
		s.ptrs.reset()
	}
	for s.off < len(s.src) {
		start, startLine := s.off, s.line
		safe, marker, directive := s.scanDocument()
		if directive {
			// yaml.v3 reads the rest: what this document says changes
			// how the next ones are read.
			s.v3 = yaml.NewDecoder(strings.NewReader(s.src[start:]))
			s.v3Offset, s.off = startLine-1, len(s.src)
			return s.next()
		}
		if safe {
			if doc, ok := s.parseFast(marker, startLine); ok {
				if doc == nil {
					continue // nothing but comments
				}
				s.fast++
				return doc, nil
			}
		}
		s.slow++
		docs, err := decodeDocuments(s.src[start:s.off], startLine-1)
		if err != nil {
			s.off = len(s.src)
			s.queueErr = err
		}
		if len(docs) > 0 {
			s.queue = docs[1:]
			return docs[0], nil
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, io.EOF
}

// scanDocument records the lines of the document at s.off, up to the next
// '---' at the start of a line, and moves s.off past them. safe is false
// when a line has anything but printable ASCII (a tab, a CR, a control
// character, non-ASCII text) or the marker line has more than a comment
// after '---'; marker is whether the document starts with '---';
// directive whether a line starts with '%' (a directive, '%YAML' or
// '%TAG') or is a document end marker ('...'), which change how the
// documents after it are read.
func (s *docStream) scanDocument() (safe, marker, directive bool) {
	s.lines = s.lines[:0]
	safe = true
	for s.off < len(s.src) {
		start, end := s.off, s.off
		for ; end < len(s.src); end++ {
			c := s.src[end]
			if c == '\n' {
				break
			}
			if c < 0x20 || c > 0x7e {
				safe = false
			}
		}
		text := s.src[start:end]
		if strings.HasPrefix(text, "%") || isMarker(text, "...") {
			directive = true
		}
		if isMarker(text, "---") {
			if len(s.lines) > 0 {
				break // the next document's
			}
			marker = true
			if rest := strings.TrimLeft(text[3:], " "); rest != "" && rest[0] != '#' {
				safe = false
			}
		}
		l := lineRec{start: start, end: end}
		for l.indent < len(text) && text[l.indent] == ' ' {
			l.indent++
		}
		switch {
		case l.indent == len(text):
			l.kind = lineBlank
		case text[l.indent] == '#':
			l.kind = lineComment
		}
		s.lines = append(s.lines, l)
		s.off, s.line = end+1, s.line+1
	}
	s.off = min(s.off, len(s.src))
	return safe, marker, directive
}

// isMarker reports whether line is the document marker m, alone or
// followed by a blank.
func isMarker(line, m string) bool {
	return strings.HasPrefix(line, m) && (len(line) == 3 || line[3] == ' ' || line[3] == '\t')
}

// yamlErrLine is the line number yaml.v3 starts its messages with.
var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): `)

// decodeDocuments decodes text, one document and what may follow it on
// lines yaml.v3 refuses, with yaml.v3, and moves every line number by
// offset, the lines before text. It returns what yaml.v3 read before the
// error it stopped at, if any. A '---' at the start of a line ends a
// document in any context, so yaml.v3 reads text as it would in the
// stream: only a quoted scalar or flow collection left open before the
// next '---', which it refuses either way, may be refused in other words.
func decodeDocuments(text string, offset int) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(text))
	var docs []*yaml.Node
	for {
		doc := &yaml.Node{}
		err := dec.Decode(doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, shiftError(err, offset)
		}
		shiftLines(doc, offset)
		docs = append(docs, doc)
	}
}

// shiftError moves the line number of yaml.v3's error by offset. yaml.v3
// leaves the line out when the error is on the first line (its line 0):
// it is then line offset+1.
func shiftError(err error, offset int) error {
	msg := err.Error()
	sm := yamlErrLine.FindStringSubmatch(msg)
	switch {
	case sm == nil && strings.HasPrefix(msg, "yaml: "):
		return errors.New("yaml: line " + strconv.Itoa(offset+1) + ": " + strings.TrimPrefix(msg, "yaml: "))
	case sm == nil || offset == 0:
		return err
	}
	n, _ := strconv.Atoi(sm[1])
	return errors.New("yaml: line " + strconv.Itoa(n+offset) + ": " + msg[len(sm[0]):])
}

func shiftLines(n *yaml.Node, offset int) {
	if offset == 0 {
		return
	}
	n.Line += offset
	for _, c := range n.Content {
		shiftLines(c, offset)
	}
}

// bail is what the fast parser panics with when the document leaves its
// subset; parseFast recovers it and yaml.v3 reads the document.
type bail struct{}

// fastParser reads the block subset from the lines of one document.
type fastParser struct {
	s *docStream
	i int // the current line, an index in s.lines
	// base is the line number of s.lines[0].
	base int
}

// parseFast parses the document in s.lines; ok is false when it leaves the
// subset. doc is nil when the document has no content.
func (s *docStream) parseFast(marker bool, firstLine int) (doc *yaml.Node, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, isBail := r.(bail); !isBail {
				panic(r)
			}
			doc, ok = nil, false
		}
	}()
	s.stack = s.stack[:0]
	p := &fastParser{s: s, base: firstLine}
	if marker {
		p.i = 1
	}
	p.skip()
	if p.i == len(s.lines) {
		if marker {
			// An explicit empty document: yaml.v3 yields a null for it.
			return nil, false
		}
		return nil, true
	}
	root := p.blockValue(-1, false, 0, 0)
	p.skip()
	if p.i != len(s.lines) || root.Kind == yaml.ScalarNode {
		panic(bail{})
	}
	doc = p.node(yaml.DocumentNode, "", "", 0, root.Line, root.Column)
	if marker {
		doc.Line, doc.Column = firstLine, 1
	}
	doc.Content = []*yaml.Node{root}
	return doc, true
}

// content returns the children pushed on the stack since from, and pops
// them.
func (p *fastParser) content(from int) []*yaml.Node {
	c := p.s.stack[from:]
	var out []*yaml.Node
	if n := len(c); n > slabSize/4 {
		out = make([]*yaml.Node, n)
	} else {
		out = p.s.ptrs.take(n)
	}
	copy(out, c)
	p.s.stack = p.s.stack[:from]
	return out
}

// slabSize is how many values a slab's chunk holds.
const slabSize = 256

// slab hands out values from chunks of slabSize, allocated as needed and,
// after reset, handed out again.
type slab[T any] struct {
	chunks [][]T
	i      int // the chunk values are taken from
}

// take returns n (at most slabSize) values, zero or as the last document
// left them.
func (s *slab[T]) take(n int) []T {
	for {
		if s.i == len(s.chunks) {
			s.chunks = append(s.chunks, make([]T, 0, slabSize))
		}
		c := s.chunks[s.i]
		if l := len(c); l+n <= cap(c) {
			s.chunks[s.i] = c[:l+n]
			return c[l : l+n : l+n]
		}
		s.i++
	}
}

// reset hands out the values again; what was taken must no longer be used.
func (s *slab[T]) reset() {
	for i := range s.chunks[:min(s.i+1, len(s.chunks))] {
		s.chunks[i] = s.chunks[i][:0]
	}
	s.i = 0
}

// node returns a new node, from a slab.
func (p *fastParser) node(kind yaml.Kind, tag, value string, style yaml.Style, line, col int) *yaml.Node {
	n := &p.s.nodes.take(1)[0]
	// Field by field: a slot of the slab only ever held a node of the
	// fast path, whose anchor, alias and comments are empty; copying a
	// whole Node would pay the GC's write barrier for all its pointers.
	n.Kind, n.Style, n.Line, n.Column = kind, style, line, col
	n.Tag, n.Value, n.Content = tag, value, nil
	return n
}

func (p *fastParser) text(i int) string { l := p.s.lines[i]; return p.s.src[l.start:l.end] }

// skip moves past blank and comment lines.
func (p *fastParser) skip() {
	for p.i < len(p.s.lines) && p.s.lines[p.i].kind != lineContent {
		p.i++
	}
}

// seqEntry reports whether line i is '-' alone or followed by a space.
func (p *fastParser) seqEntry(i int) bool {
	l, t := p.s.lines[i], p.text(i)
	return l.kind == lineContent && t[l.indent] == '-' && (l.indent+1 == len(t) || t[l.indent+1] == ' ')
}

// blockValue reads the node that starts on the lines after the current
// one, more indented than parent (or, in a mapping, a sequence as
// indented: 'key:' then '- item'), or returns a null at nullLine:nullCol
// when there is none.
func (p *fastParser) blockValue(parent int, inMapping bool, nullLine, nullCol int) *yaml.Node {
	p.skip()
	if p.i < len(p.s.lines) {
		l := p.s.lines[p.i]
		switch {
		case l.indent > parent && p.seqEntry(p.i):
			return p.sequence(l.indent)
		case l.indent > parent:
			if _, _, ok := p.key(p.i, l.indent); !ok {
				panic(bail{}) // a scalar on its own line, maybe on several
			}
			return p.mapping(l.indent)
		case l.indent == parent && inMapping && p.seqEntry(p.i):
			return p.sequence(l.indent)
		}
	}
	return p.node(yaml.ScalarNode, "!!null", "", 0, nullLine, nullCol)
}

// sequence reads a block sequence whose '-' are at column n.
func (p *fastParser) sequence(n int) *yaml.Node {
	seq := p.node(yaml.SequenceNode, "!!seq", "", 0, p.base+p.i, n+1)
	from := len(p.s.stack)
	defer func() { seq.Content = p.content(from) }()
	for {
		t, line := p.text(p.i), p.base+p.i
		c := n + 1
		for c < len(t) && t[c] == ' ' {
			c++
		}
		var item *yaml.Node
		switch {
		case c == len(t) || t[c] == '#' && c > n+1:
			p.i++
			item = p.blockValue(n, false, line, n+2)
		case t[c] == '-' && (c+1 == len(t) || t[c+1] == ' '):
			panic(bail{}) // '- - x'
		default:
			item = p.inline(c, n)
		}
		p.s.stack = append(p.s.stack, item)
		p.skip()
		if p.i == len(p.s.lines) {
			return seq
		}
		l := p.s.lines[p.i]
		if l.indent > n {
			panic(bail{})
		}
		if l.indent < n || !p.seqEntry(p.i) {
			return seq
		}
	}
}

// inline reads the node at column c of the current line, in a collection
// at column parent: a mapping whose first key is there, or a scalar.
func (p *fastParser) inline(c, parent int) *yaml.Node {
	if _, _, ok := p.key(p.i, c); ok {
		return p.mapping(c)
	}
	return p.scalar(c, parent)
}

// mapping reads a block mapping whose keys are at column n, the first on
// the current line.
func (p *fastParser) mapping(n int) *yaml.Node {
	m := p.node(yaml.MappingNode, "!!map", "", 0, p.base+p.i, n+1)
	from := len(p.s.stack)
	defer func() { m.Content = p.content(from) }()
	for {
		line, t := p.base+p.i, p.text(p.i)
		k, colon, ok := p.key(p.i, n)
		if !ok {
			panic(bail{})
		}
		v := colon + 1
		for v < len(t) && t[v] == ' ' {
			v++
		}
		var val *yaml.Node
		if v == len(t) || t[v] == '#' {
			p.i++
			val = p.blockValue(n, true, line, colon+2)
		} else {
			val = p.scalar(v, n)
		}
		p.s.stack = append(p.s.stack, k, val)
		p.skip()
		if p.i == len(p.s.lines) {
			return m
		}
		l := p.s.lines[p.i]
		if l.indent > n || l.indent == n && p.seqEntry(p.i) {
			panic(bail{})
		}
		if l.indent < n {
			return m
		}
	}
}

// key reads the mapping key at column c of line i: a plain scalar, or a
// quoted one, followed by ':' and a space or the end of the line. ok is
// false when the line has no key there.
func (p *fastParser) key(i, c int) (k *yaml.Node, colon int, ok bool) {
	t, line := p.text(i), p.base+i
	switch t[c] {
	case '"', '\'':
		value, end, style := p.quoted(t, c)
		if end < 0 || end >= len(t) || t[end] != ':' {
			return nil, 0, false
		}
		if end+1 < len(t) && t[end+1] != ' ' {
			panic(bail{})
		}
		return p.node(yaml.ScalarNode, "!!str", value, style, line, c+1), end, true
	case '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '%', '@', '`':
		return nil, 0, false
	}
	for j := c; j < len(t); j++ {
		switch {
		case t[j] == '#' && t[j-1] == ' ':
			return nil, 0, false // a comment: no key on this line
		case t[j] == ':' && (j+1 == len(t) || t[j+1] == ' '):
			key := t[c:j]
			if key[len(key)-1] == ' ' || len(key) > 1024 || key == "<<" {
				panic(bail{})
			}
			return p.node(yaml.ScalarNode, "", key, 0, line, c+1), j, true
		}
	}
	return nil, 0, false
}

// quoted reads the one-line quoted scalar at column c of t; end is the
// offset after its closing quote, or -1 when it is not closed on the line
// or has escapes.
func (p *fastParser) quoted(t string, c int) (value string, end int, style yaml.Style) {
	if t[c] == '"' {
		escaped := false
		for j := c + 1; j < len(t); j++ {
			switch t[j] {
			case '\\':
				escaped = true
				j++
			case '"':
				if !escaped {
					return t[c+1 : j], j + 1, yaml.DoubleQuotedStyle
				}
				v, ok := unescape(t[c+1 : j])
				if !ok {
					return "", -1, 0
				}
				return v, j + 1, yaml.DoubleQuotedStyle
			}
		}
		return "", -1, 0
	}
	var b []byte // the value so far, when it has an escaped quote
	for j := c + 1; j < len(t); {
		k := strings.IndexByte(t[j:], '\'')
		if k < 0 {
			break
		}
		k += j
		if k+1 < len(t) && t[k+1] == '\'' {
			b = append(b, t[j:k+1]...)
			j = k + 2
			continue
		}
		if b == nil {
			return t[c+1 : k], k + 1, yaml.SingleQuotedStyle
		}
		return string(append(b, t[j:k]...)), k + 1, yaml.SingleQuotedStyle
	}
	return "", -1, 0
}

// unescape decodes the escapes of a double-quoted scalar as YAML does
// ('\\n', '\\"', '\\u00e9'...); ok is false for an escape YAML refuses.
func unescape(q string) (string, bool) {
	var b strings.Builder
	b.Grow(len(q))
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(q) {
			return "", false
		}
		width := 0
		switch q[i] {
		case '0':
			b.WriteByte(0)
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 't', '\t':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'v':
			b.WriteByte('\v')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case ' ', '"', '\'', '\\':
			b.WriteByte(q[i])
		case 'N':
			b.WriteRune('\u0085')
		case '_':
			b.WriteRune('\u00a0')
		case 'L':
			b.WriteRune('\u2028')
		case 'P':
			b.WriteRune('\u2029')
		case 'x':
			width = 2
		case 'u':
			width = 4
		case 'U':
			width = 8
		default:
			return "", false
		}
		if width > 0 {
			if i+1+width > len(q) {
				return "", false
			}
			r, err := strconv.ParseUint(q[i+1:i+1+width], 16, 32)
			if err != nil || r >= 0xd800 && r <= 0xdfff || r > 0x10ffff {
				return "", false
			}
			b.WriteRune(rune(r))
			i += width
		}
	}
	return b.String(), true
}

// scalar reads the scalar at column c of the current line, the value of a
// key or item of a collection at column parent, and moves to the next
// line.
func (p *fastParser) scalar(c, parent int) *yaml.Node {
	t, line := p.text(p.i), p.base+p.i
	switch t[c] {
	case '|':
		return p.literal(c, parent)
	case '"', '\'':
		value, end, style := p.quoted(t, c)
		if end < 0 {
			panic(bail{})
		}
		for end < len(t) && t[end] == ' ' {
			end++
		}
		if end < len(t) && (t[end] != '#' || t[end-1] != ' ') {
			panic(bail{})
		}
		p.i++
		return p.node(yaml.ScalarNode, "!!str", value, style, line, c+1)
	case '>', ',', '[', ']', '{', '}', '#', '&', '*', '!', '%', '@', '`':
		panic(bail{})
	case '-', '?', ':':
		if c+1 == len(t) || t[c+1] == ' ' {
			panic(bail{})
		}
	}
	e := len(t)
	for j := c; j < len(t); j++ {
		if t[j] == '#' && t[j-1] == ' ' {
			e = j
			break
		}
		if t[j] == ':' && (j+1 == len(t) || t[j+1] == ' ') {
			panic(bail{}) // 'a: b: c', which yaml.v3 refuses
		}
	}
	for t[e-1] == ' ' {
		e--
	}
	p.i++
	return p.node(yaml.ScalarNode, "", t[c:e], 0, line, c+1)
}

// literal reads the literal block scalar whose '|' is at column c of the
// current line, in a collection at column parent: '|' or '|-', without an
// indentation indicator, and with a first line of text right after it.
func (p *fastParser) literal(c, parent int) *yaml.Node {
	t, line := p.text(p.i), p.base+p.i
	strip := false
	h := c + 1
	if h < len(t) && t[h] == '-' {
		strip = true
		h++
	}
	for h < len(t) && t[h] == ' ' {
		h++
	}
	if h < len(t) && (t[h] != '#' || t[h-1] != ' ') {
		panic(bail{}) // '|+', '|2', or text after the header
	}
	p.i++
	lines := p.s.lines
	if p.i == len(lines) || lines[p.i].kind == lineBlank || lines[p.i].indent <= parent {
		panic(bail{}) // leading empty lines, or an empty value
	}
	indent := lines[p.i].indent
	first, last := p.i, p.i // the block's lines, and its last line of text
	for ; p.i < len(lines); p.i++ {
		l := lines[p.i]
		if l.kind == lineBlank {
			if l.end-l.start > indent {
				panic(bail{}) // spaces beyond the indentation are text
			}
			continue
		}
		if l.indent < indent {
			break
		}
		last = p.i
	}
	if lines[last].end == len(p.s.src) {
		panic(bail{}) // no line break after the text: chomping differs
	}
	var value string
	if first == last {
		value = p.s.src[lines[first].start+indent : lines[first].end+1]
	} else {
		var b strings.Builder
		for i := first; i <= last; i++ {
			if l := lines[i]; l.kind != lineBlank {
				b.WriteString(p.s.src[l.start+indent : l.end])
			}
			b.WriteByte('\n')
		}
		value = b.String()
	}
	if strip {
		value = value[:len(value)-1]
	}
	return p.node(yaml.ScalarNode, "!!str", value, yaml.LiteralStyle, line, c+1)
}
