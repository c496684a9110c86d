//go:build unix

package main

import "fmt"

// gcEntry is a file or directory that gc removed, or would remove with -n.
// Its JSON field names are part of the command's interface.
type gcEntry struct {
	Name    string `json:"name"`            // a segment's or temporary file's name, a directory's path
	Kind    string `json:"kind"`            // "segment", "temp" or "manager-dir"
	Removed bool   `json:"removed"`         // false with -n, and when removing failed
	Error   string `json:"error,omitempty"` // why removing failed
}

// gcReport is how gc tells what it removes: a line per file as it goes,
// or, with -json, one array when it ends.
type gcReport struct {
	inv     *invocation
	dryRun  bool // nothing is removed
	asJSON  bool
	entries []gcEntry
}

// add reports that gc removed name, of the kind that gcEntry.Kind names,
// or with dryRun would remove it, or failed to with err. A failure is
// reported on standard error too, and makes the command fail.
func (r *gcReport) add(name, kind string, err error) {
	if err != nil {
		r.inv.errorf("gc: %v", err)
	}
	if r.asJSON {
		e := gcEntry{Name: name, Kind: kind, Removed: !r.dryRun && err == nil}
		if err != nil {
			e.Error = err.Error()
		}
		r.entries = append(r.entries, e)
		return
	}
	switch {
	case err != nil:
	case r.dryRun:
		fmt.Fprintf(r.inv.stdout, "would remove %s\n", printable(name))
	default:
		fmt.Fprintf(r.inv.stdout, "removed %s\n", printable(name))
	}
}

// flush prints, with -json, the array of what add reported: [] if nothing.
func (r *gcReport) flush() error {
	if !r.asJSON {
		return nil
	}
	if r.entries == nil {
		r.entries = []gcEntry{}
	}
	return printJSON(r.inv, r.entries)
}
