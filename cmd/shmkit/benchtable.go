package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shmkit/shmkit/internal/bench"
)

func writeBenchJSON(out io.Writer, rep *benchReport) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// printTable prints the report: a header naming the machine, a part per
// family with a row per workload and, under a Python or Redis row, our
// throughput over theirs; then what the columns and rows mean.
func printTable(out io.Writer, rep *benchReport) error {
	fmt.Fprintf(out, "shmkit bench: %s\n", rep.Machine)
	runs := fmt.Sprintf("median of %d runs of about %v each", rep.Runs, time.Duration(rep.TargetNs))
	if rep.Runs == 1 {
		runs = fmt.Sprintf("one run of about %v", time.Duration(rep.TargetNs))
	}
	fmt.Fprintf(out, "total throughput of all processes, M ops/s (%s)\n\n", runs)

	// Lines of a name and cells, or of a heading alone, aligned below.
	type line struct {
		name    string
		cells   []string
		heading bool
	}
	header := line{name: "P ="}
	for _, p := range rep.Procs {
		header.cells = append(header.cells, strconv.Itoa(p))
	}
	lines := []line{header}
	for _, f := range rep.Families {
		lines = append(lines, line{name: f.Title, heading: true})
		for _, r := range f.Rows {
			l := line{name: "  " + r.Workload}
			for _, p := range rep.Procs {
				if c := r.cell(p); c != nil {
					l.cells = append(l.cells, figure(c.MOpsPerS))
				} else if r.Missing == "" && r.Error == "" {
					l.cells = append(l.cells, "-")
				}
			}
			switch {
			case r.Missing != "":
				l.cells = append(l.cells, r.Missing)
			case r.Error != "":
				l.cells = append(l.cells, "failed: "+cut(r.Error, 50))
			}
			lines = append(lines, l)
			if r.Vs == "" || len(r.Cells) == 0 || f.row(r.Vs) == nil {
				continue
			}
			ratio := line{name: "  " + r.Vs + "/" + r.Workload}
			for _, p := range rep.Procs {
				c := r.cell(p)
				if c == nil || c.Ratio == 0 {
					ratio.cells = append(ratio.cells, "-")
				} else {
					ratio.cells = append(ratio.cells, times(c.Ratio))
				}
			}
			lines = append(lines, ratio)
		}
	}

	nameWidth := 0
	colWidth := make([]int, len(rep.Procs))
	for _, l := range lines {
		if l.heading {
			continue
		}
		nameWidth = max(nameWidth, utf8.RuneCountInString(l.name))
		for i, c := range l.cells {
			// A reason in place of the figures spans the columns.
			if i < len(colWidth) && !(i == len(l.cells)-1 && !isFigure(c)) {
				colWidth[i] = max(colWidth[i], len(c))
			}
		}
	}
	for _, l := range lines {
		if l.heading {
			fmt.Fprintln(out, l.name)
			continue
		}
		var b strings.Builder
		b.WriteString(l.name)
		b.WriteString(strings.Repeat(" ", nameWidth-utf8.RuneCountInString(l.name)))
		for i, c := range l.cells {
			b.WriteString("  ")
			if i < len(colWidth) && isFigure(c) {
				b.WriteString(strings.Repeat(" ", colWidth[i]-len(c)))
			}
			b.WriteString(c)
		}
		fmt.Fprintln(out, b.String())
	}

	fmt.Fprintln(out, "\nP is the number of processes: goroutines of one process for go.*; for queues and pipes, P")
	fmt.Fprintln(out, "producers and P more consumers, and an operation is one message put and got; for pools, P")
	fmt.Fprintln(out, "workers, and an operation is one item sent and its result back; for the manager and Redis,")
	fmt.Fprintln(out, "P connections (P client processes for py.dict.*), and an operation is a request and its reply.")
	fmt.Fprintln(out, "A line A/B is A's throughput over B's, measured in this run.")
	if lo, hi, ok := runSpan(rep); ok {
		fmt.Fprintf(out, "A run lasted %s to %s (the median of each cell's runs).\n", shortDuration(lo), shortDuration(hi))
	}
	fmt.Fprintln(out)
	for _, f := range rep.Families {
		for _, r := range f.Rows {
			fmt.Fprintf(out, "%-13s %s\n", r.Workload, r.What)
		}
	}
	return nil
}

// isFigure says whether a cell is a number (or a ratio, or "-") rather
// than a reason.
func isFigure(s string) bool {
	s = strings.TrimPrefix(s, "x")
	_, err := strconv.ParseFloat(s, 64)
	return err == nil || s == "-"
}

// runSpan returns the shortest and longest of the cells' median runs.
func runSpan(rep *benchReport) (lo, hi float64, ok bool) {
	lo = math.Inf(1)
	for _, f := range rep.Families {
		for _, r := range f.Rows {
			for _, c := range r.Cells {
				m := bench.Median(c.RunSeconds)
				lo, hi, ok = min(lo, m), max(hi, m), true
			}
		}
	}
	return lo, hi, ok
}

func shortDuration(secs float64) string {
	return time.Duration(secs * 1e9).Round(time.Millisecond / 10).String()
}

// cut shortens s's first line to at most n characters, ending in "…".
func cut(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// times formats a ratio: x335, x33, x3.4, x0.52.
func times(r float64) string {
	switch {
	case r >= 10:
		return "x" + strconv.FormatFloat(r, 'f', 0, 64)
	case r >= 1:
		return "x" + strconv.FormatFloat(r, 'f', 1, 64)
	}
	return "x" + strconv.FormatFloat(r, 'f', 2, 64)
}

// figure formats a throughput in M ops/s with two decimals, or with two
// significant digits below 0.1 (a pool's tasks, at tens of thousands a
// second), where two decimals would leave one or none.
func figure(m float64) string {
	prec := 2
	if m > 0 && m < 0.1 {
		prec = 1 - int(math.Floor(math.Log10(m)))
	}
	return strconv.FormatFloat(m, 'f', prec, 64)
}
