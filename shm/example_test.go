//go:build linux

package shm_test

import (
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// A named segment is a file in /dev/shm that every process opening the
// name maps into its memory. One process creates it; the others open it by
// name. Here one program plays both parts: the second mapping, made by
// Open, is what another process would get.
func ExampleCreate() {
	name := fmt.Sprintf("shmkit-example-create-%d", os.Getpid())
	seg, err := shm.Create(name, 1<<16)
	if err != nil {
		log.Fatal(err)
	}
	// A named segment outlives every process that uses it: remove it when
	// the work is done, or it stays in /dev/shm until the machine reboots.
	defer shm.Remove(name)
	defer seg.Close()

	_, err = shm.Create(name, 1<<16)
	fmt.Println("create again:", errors.Is(err, fs.ErrExist))

	visits, err := value.New[int64](seg, "visits")
	if err != nil {
		log.Fatal(err)
	}

	// In another process: open the segment by name, then the cell.
	other, err := shm.Open(name)
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close()
	v, err := value.Open[int64](other, "visits")
	if err != nil {
		log.Fatal(err)
	}
	v.Add(1)

	fmt.Println(other.Size(), other.Name() == seg.Name())
	fmt.Println("visits seen by the creator:", visits.Load())
	// Output:
	// create again: true
	// 65536 true
	// visits seen by the creator: 1
}

// Remove unlinks the name at once, but a process that has the segment
// mapped goes on using it until it closes it; only later Opens fail.
func ExampleRemove() {
	name := fmt.Sprintf("shmkit-example-remove-%d", os.Getpid())
	seg, err := shm.Create(name, 1<<16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	hits, err := value.New[int64](seg, "hits")
	if err != nil {
		log.Fatal(err)
	}

	if err := shm.Remove(name); err != nil {
		log.Fatal(err)
	}
	_, err = shm.Open(name)
	fmt.Println("open after remove:", errors.Is(err, fs.ErrNotExist))
	fmt.Println("still mapped here:", hits.Add(1))
	// Output:
	// open after remove: true
	// still mapped here: 1
}

// An anonymous segment has no name and no file in /dev/shm, so there is
// nothing to remove: it goes away when the last process closes it. Other
// processes receive it as a file descriptor, from File (or package
// process's Segments option), and map it with FromFile.
func ExampleCreateAnonymous() {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	greeting, err := value.New[[5]byte](seg, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	greeting.Store([5]byte{'h', 'e', 'l', 'l', 'o'})

	// The descriptor is what would be passed to another process.
	f, err := seg.File()
	if err != nil {
		log.Fatal(err)
	}
	other, err := shm.FromFile(f)
	f.Close() // the Segment keeps a descriptor of its own
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close()
	g, err := value.Open[[5]byte](other, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	b := g.Load()
	fmt.Printf("%q %s\n", other.Name(), b[:])
	// Output:
	// "" hello
}

// Packages value, array and semaphore create their objects by name in a
// segment's directory. Objects lists them, in the order they were made,
// with the kind and element type each was created with: what the shmkit
// command shows for a segment, and what Open checks a process's type
// against.
func ExampleSegment_Objects() {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	if _, err := value.New[float64](seg, "temperature"); err != nil {
		log.Fatal(err)
	}
	if _, err := array.New[int32](seg, "histogram", 10); err != nil {
		log.Fatal(err)
	}
	if _, err := semaphore.NewMutex(seg, "lock"); err != nil {
		log.Fatal(err)
	}

	objs, err := seg.Objects()
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range objs {
		fmt.Printf("%-11s %-5s %s\n", o.Name, o.Kind, o.Type)
	}

	// Opening an object as another type is refused rather than misread.
	_, err = value.Open[int64](seg, "temperature")
	fmt.Println(errors.Is(err, shm.ErrTypeMismatch))
	// Output:
	// temperature value float64
	// histogram   array int32
	// lock        mutex semaphore.mutex
	// true
}

// Alloc and Lookup are the layer under the typed packages: an object is a
// named, zeroed range of the segment's memory. Its Bytes are shared with
// every process that maps the segment, with no synchronisation of their
// own; the typed packages add that.
func ExampleSegment_Alloc() {
	seg, err := shm.CreateAnonymous(1 << 16)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	obj, err := seg.Alloc(shm.ObjectSpec{Name: "banner", Kind: "raw", Size: 32, Init: []byte("ready")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(obj.Name, obj.Size, len(obj.Bytes))

	_, err = seg.Alloc(shm.ObjectSpec{Name: "banner", Kind: "raw", Size: 32})
	fmt.Println("alloc again:", errors.Is(err, fs.ErrExist))

	found, err := seg.Lookup("banner") // as another process would find it
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", found.Bytes[:5])
	_, err = seg.Lookup("missing")
	fmt.Println("missing:", errors.Is(err, fs.ErrNotExist))
	// Output:
	// banner 32 32
	// alloc again: true
	// ready
	// missing: true
}
