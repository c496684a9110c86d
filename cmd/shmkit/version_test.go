package main

import (
	"encoding/json"
	"maps"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// versionWith runs the version command with args as if the binary had
// been built as info describes (nil: without build information).
func versionWith(t *testing.T, info *debug.BuildInfo, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	inv := &invocation{stdout: &out, stderr: &errOut, buildInfo: func() (*debug.BuildInfo, bool) {
		return info, info != nil
	}}
	code = inv.run(t.Context(), append([]string{"version"}, args...))
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	const rev = "9d7ec8a1b2c3d4e5f60718293a4b5c6d7e8f9012"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "-buildmode", Value: "exe"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-03T13:00:00Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	shmkitMain := func(version string, settings []debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Path:      modulePath + "/cmd/shmkit",
			Main:      debug.Module{Path: modulePath, Version: version},
			Deps:      []*debug.Module{{Path: "golang.org/x/sys", Version: "v0.40.0"}},
			Settings:  settings,
		}
	}
	// tool is another program that has shmkit as its dependency dep.
	tool := func(dep *debug.Module) *debug.BuildInfo {
		return &debug.BuildInfo{
			GoVersion: "go1.26.1",
			Path:      "example.com/tool",
			Main:      debug.Module{Path: "example.com/tool", Version: devel},
			Deps:      []*debug.Module{{Path: "golang.org/x/sys", Version: "v0.40.0"}, dep},
			Settings:  vcs("true"), // the tool's tree, not shmkit's
		}
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		line string
		json buildVersion
	}{
		{
			name: "released",
			info: shmkitMain("v0.3.0", []debug.BuildSetting{{Key: "-buildmode", Value: "exe"}}),
			line: "shmkit v0.3.0 go1.26.8 " + platform,
			json: buildVersion{Version: "v0.3.0", Go: "go1.26.8"},
		},
		{
			name: "devel dirty",
			info: shmkitMain(devel, vcs("true")),
			line: "shmkit (devel) 9d7ec8a1b2c3+dirty 2026-12-03T13:00:00Z go1.26.8 " + platform,
			json: buildVersion{Version: devel, Revision: rev, Time: "2026-12-03T13:00:00Z", Modified: true, Go: "go1.26.8"},
		},
		{
			name: "devel clean",
			info: shmkitMain(devel, vcs("false")),
			line: "shmkit (devel) 9d7ec8a1b2c3 2026-12-03T13:00:00Z go1.26.8 " + platform,
			json: buildVersion{Version: devel, Revision: rev, Time: "2026-12-03T13:00:00Z", Go: "go1.26.8"},
		},
		{
			name: "devel without vcs",
			info: shmkitMain("", nil),
			line: "shmkit (devel) go1.26.8 " + platform,
			json: buildVersion{Version: devel, Go: "go1.26.8"},
		},
		{
			// go build in a tagged checkout: the version names the
			// commit, which only the JSON repeats.
			name: "tagged checkout",
			info: shmkitMain("v0.3.0+dirty", vcs("true")),
			line: "shmkit v0.3.0+dirty go1.26.8 " + platform,
			json: buildVersion{Version: "v0.3.0+dirty", Revision: rev, Time: "2026-12-03T13:00:00Z", Modified: true, Go: "go1.26.8"},
		},
		{
			name: "dependency",
			info: tool(&debug.Module{Path: modulePath, Version: "v0.2.1"}),
			line: "shmkit v0.2.1 go1.26.1 " + platform,
			json: buildVersion{Version: "v0.2.1", Go: "go1.26.1"},
		},
		{
			name: "dependency replaced by a fork",
			info: tool(&debug.Module{Path: modulePath, Version: "v0.2.1",
				Replace: &debug.Module{Path: "example.com/fork", Version: "v0.2.2"}}),
			line: "shmkit v0.2.2 go1.26.1 " + platform,
			json: buildVersion{Version: "v0.2.2", Go: "go1.26.1"},
		},
		{
			name: "dependency replaced by a directory",
			info: tool(&debug.Module{Path: modulePath, Version: "v0.2.1",
				Replace: &debug.Module{Path: "../shmkit"}}),
			line: "shmkit (devel) go1.26.1 " + platform,
			json: buildVersion{Version: devel, Go: "go1.26.1"},
		},
		{
			name: "not a dependency",
			info: tool(&debug.Module{Path: "example.com/other", Version: "v1.0.0"}),
			line: "shmkit (unknown) go1.26.1 " + platform,
			json: buildVersion{Version: "(unknown)", Go: "go1.26.1"},
		},
		{
			name: "no build information",
			line: "shmkit (unknown) " + runtime.Version() + " " + platform,
			json: buildVersion{Version: "(unknown)", Go: runtime.Version()},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := versionWith(t, tc.info)
			if code != 0 || errOut != "" || out != tc.line+"\n" {
				t.Errorf("version: status %d, stdout %q, stderr %q; want 0 and %q", code, out, errOut, tc.line)
			}

			code, out, errOut = versionWith(t, tc.info, "-json")
			if code != 0 || errOut != "" {
				t.Fatalf("version -json: status %d, stderr %q", code, errOut)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal([]byte(out), &fields); err != nil {
				t.Fatalf("version -json printed %q: %v", out, err)
			}
			want := []string{"arch", "go", "modified", "os", "revision", "time", "version"}
			if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
				t.Errorf("fields = %q, want %q", got, want)
			}
			var got struct {
				Version  string `json:"version"`
				Revision string `json:"revision"`
				Time     string `json:"time"`
				Modified bool   `json:"modified"`
				Go       string `json:"go"`
				OS       string `json:"os"`
				Arch     string `json:"arch"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			w := tc.json
			w.OS, w.Arch = runtime.GOOS, runtime.GOARCH
			if buildVersion(got) != w {
				t.Errorf("version -json = %+v, want %+v", got, w)
			}
		})
	}
}

// TestVersionOfThisBinary runs the version command on the test binary's
// own build information.
func TestVersionOfThisBinary(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"version"}, &out, &errOut); code != 0 || errOut.Len() != 0 {
		t.Fatalf("version: status %d, stderr %q", code, errOut.String())
	}
	f := strings.Fields(out.String())
	if len(f) < 4 || f[0] != "shmkit" || f[len(f)-2] != runtime.Version() || f[len(f)-1] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version printed %q, want shmkit, a version, %s and %s/%s", out.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
}

func TestVersionUsage(t *testing.T) {
	for _, args := range [][]string{{"now"}, {"-json", "now"}, {"-bogus"}} {
		code, out, errOut := versionWith(t, nil, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "usage: shmkit") {
			t.Errorf("version %q: status %d, stdout %q, stderr %q; want 2 and usage", args, code, out, errOut)
		}
	}
}
