package annotation

import (
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultMemoBytes bounds the memo of Decode: 4 MiB holds about 15,000
// entries of a typical 100-byte value, far more distinct values than a
// cluster has, or 64 of the largest, while staying small next to the
// informer caches of a controller.
const DefaultMemoBytes = 4 << 20

// memoEntryOverhead is what an entry costs besides its value and decoded
// form: the entry, its map slot and ring slot. Counting it bounds the number
// of entries, and so the memory of the map and ring, by the byte budget.
const memoEntryOverhead = 192

// memo remembers the decoded form of values that decoded, so that a value
// repeated across every object and every reconcile is parsed once. It never
// holds a value that failed: those are cheap to refuse again, and keeping
// them would let a tenant fill it. It evicts by CLOCK (second chance): a hit
// only sets a bit under the read lock, so hits never contend with each
// other, and an entry inserted without a hit since goes first, so a tenant
// churning distinct values evicts its own entries before hot ones.
//
// memo is safe for concurrent use.
type memo struct {
	max int // bytes; 0 disables the memo

	mu      sync.RWMutex // guards entries, ring, hand and used
	entries map[memoKey]*memoEntry
	ring    []*memoEntry // the clock; order is insertion but for evictions
	hand    int
	used    int
}

type memoKey struct {
	typ   reflect.Type
	value string
}

type memoEntry struct {
	key  memoKey
	plan *plan
	val  reflect.Value // the decoded struct; never handed out, only copied
	size int
	hit  atomic.Bool // the CLOCK's referenced bit
}

func newMemo(maxBytes int) *memo {
	return &memo{max: max(maxBytes, 0), entries: map[memoKey]*memoEntry{}}
}

func (m *memo) get(t reflect.Type, value string) *memoEntry {
	if m.max == 0 {
		return nil
	}
	m.mu.RLock()
	e := m.entries[memoKey{t, value}]
	m.mu.RUnlock()
	if e != nil && !e.hit.Load() {
		// Load first: a store on every hit would bounce the cache line
		// between cores.
		e.hit.Store(true)
	}
	return e
}

// put remembers a copy of val, the decoded form of value, which holds
// decoded bytes.
func (m *memo) put(p *plan, value string, val reflect.Value, decoded int) {
	size := len(value) + decoded + memoEntryOverhead
	if size > m.max/8 {
		// Too large to be worth crowding out others; also true when the
		// memo is disabled.
		return
	}
	own := reflect.New(p.typ).Elem()
	p.copyValue(own, val)
	// Own the key too: the caller's string may be part of a larger one.
	e := &memoEntry{key: memoKey{p.typ, strings.Clone(value)}, plan: p, val: own, size: size}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[e.key]; ok {
		return // another goroutine decoded it too
	}
	for m.used+size > m.max {
		m.evictOne()
	}
	m.entries[e.key] = e
	m.ring = append(m.ring, e)
	m.used += size
}

// evictOne advances the hand, clearing referenced bits, to the first entry
// not referenced since the hand last passed, and drops it. It ends within
// two turns of the clock. m.mu must be held.
func (m *memo) evictOne() {
	for {
		if m.hand >= len(m.ring) {
			m.hand = 0
		}
		e := m.ring[m.hand]
		if e.hit.Load() {
			e.hit.Store(false)
			m.hand++
			continue
		}
		delete(m.entries, e.key)
		last := len(m.ring) - 1
		m.ring[m.hand] = m.ring[last]
		m.ring[last] = nil // drop the entry's memory with it
		m.ring = m.ring[:last]
		m.used -= e.size
		return
	}
}

// stats reports the number of entries and bytes used, for tests.
func (m *memo) stats() (entries, used int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries), m.used
}
