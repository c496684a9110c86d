package main

import (
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// modulePath is the path of the module that shmkit belongs to.
const modulePath = "github.com/shmkit/shmkit"

// devel is the version the go command gives a module built from a source
// tree that has no version of its own.
const devel = "(devel)"

// buildVersion is what the version command reports. Its JSON field names
// are part of the command's interface.
type buildVersion struct {
	Version  string `json:"version"`
	Revision string `json:"revision"` // the commit built from, empty if unknown
	Time     string `json:"time"`     // the commit's time (RFC 3339), empty if unknown
	Modified bool   `json:"modified"` // the source tree had uncommitted changes
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
}

// versionOf returns the version of module shmkit in the binary that info
// describes, or "(unknown)" for a binary without build information (a
// nil info) or without the module. The commit is taken from the build
// settings only when shmkit is the main module: they describe the main
// module's source tree, which is another program's when shmkit is built
// as its dependency.
func versionOf(info *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: "(unknown)", Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if info == nil {
		return v
	}
	if info.GoVersion != "" {
		v.Go = info.GoVersion
	}
	if info.Main.Path == modulePath {
		v.Version = info.Main.Version
		if v.Version == "" {
			v.Version = devel
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
		return v
	}
	for _, dep := range info.Deps {
		if dep.Path != modulePath {
			continue
		}
		if dep.Replace != nil {
			dep = dep.Replace
		}
		v.Version = dep.Version
		if v.Version == "" { // replaced by a directory
			v.Version = devel
		}
		break
	}
	return v
}

// String renders v as the version command prints it:
//
//	shmkit v0.3.0 go1.26.8 linux/amd64
//	shmkit (devel) 9d7ec8a1b2c3+dirty 2026-12-03T13:00:00Z go1.26.8 linux/amd64
//
// The commit is shown only for a "(devel)" version: any other names a
// release, or is a pseudo-version that holds the commit already.
func (v buildVersion) String() string {
	f := []string{"shmkit", v.Version}
	if v.Version == devel {
		if v.Revision != "" {
			rev := v.Revision[:min(len(v.Revision), 12)]
			if v.Modified {
				rev += "+dirty"
			}
			f = append(f, rev)
		}
		if v.Time != "" {
			f = append(f, v.Time)
		}
	}
	return strings.Join(append(f, v.Go, v.OS+"/"+v.Arch), " ")
}

func runVersion(inv *invocation, args []string) error {
	flags := newFlagSet(inv, "version [-json]")
	asJSON := flags.Bool("json", false, "print a JSON object instead of a line")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() != 0 {
		return usageError{msg: "version takes no arguments"}
	}
	info, ok := inv.buildInfo()
	if !ok {
		info = nil
	}
	v := versionOf(info)
	if *asJSON {
		return printJSON(inv, v)
	}
	_, err := io.WriteString(inv.stdout, v.String()+"\n")
	return err
}
