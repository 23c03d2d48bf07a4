package cpio

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzCPIO feeds arbitrary bytes to Read. It must not panic, and whatever it
// accepts must write back (Writer) to an archive that reads to the same
// entries, and writing that again must give the same bytes.
func FuzzCPIO(f *testing.F) {
	f.Add(trailer())
	f.Add(write(f, sample))
	f.Add(arc(ent(".", dir, ""), ent("./boot", dir, ""), ent("./boot/vmlinuz", reg, "kernel"), ent("./l", link, "boot"), trailer()))
	f.Add(arc(
		entWith("x", reg, "", func(f *fields) { f[fIno], f[fNLink] = 7, 2 }),
		entWith("y", reg, "data", func(f *fields) { f[fIno], f[fNLink] = 7, 2 }),
		trailer(), make([]byte, 100)))
	f.Add(arc(ent("a", reg, "data"), ent("a", reg, "data"), trailer()))
	f.Add(arc(ent("a", reg, "data"))[:100])
	f.Add([]byte("070701"))

	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := Read(data)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		w := NewWriter(&buf)
		for i := range es {
			if err := w.Add(&es[i]); err != nil {
				t.Fatalf("Add(%+v) of an accepted entry: %v", es[i], err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := Read(buf.Bytes())
		if err != nil {
			t.Fatalf("Read of the rewritten archive: %v", err)
		}
		if !reflect.DeepEqual(again, es) {
			t.Fatalf("rewritten archive reads\n%+v\nwant\n%+v", again, es)
		}
		var buf2 bytes.Buffer
		w = NewWriter(&buf2)
		for i := range again {
			w.Add(&again[i])
		}
		w.Close()
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatalf("writing twice gave different bytes")
		}
	})
}
