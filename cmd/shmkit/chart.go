package main

import (
	"fmt"
	"image/color"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// drawChart plots total throughput against the number of processes, one
// line per workload, on a logarithmic axis (the workloads span three
// orders of magnitude), and saves it to path; the extension picks the
// format.
func drawChart(path string, workloads []string, results []benchResult) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg", ".png":
	default:
		return fmt.Errorf("bench: chart %s: the name must end in .svg or .png", path)
	}
	p := plot.New()
	p.Title.Text = "shmkit bench: counter, lock, queue and pool contention"
	p.X.Label.Text = "processes (goroutines for go.*; P producers and P consumers for queues; P workers for pools)"
	p.Y.Label.Text = "total throughput, M ops/s"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	// Leave the right of the plot to the legend, clear of the lines.
	maxProcs := 1
	for _, r := range results {
		maxProcs = max(maxProcs, r.Procs)
	}
	p.X.Min, p.X.Max = 0.5, float64(maxProcs)*1.45+0.5
	p.X.Tick.Marker = integerTicks{max: maxProcs}

	for i, w := range workloads {
		var pts plotter.XYs
		for _, r := range results {
			if r.Workload == w && r.MOpsPerS > 0 {
				pts = append(pts, plotter.XY{X: float64(r.Procs), Y: r.MOpsPerS})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, marks, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("bench: chart: %w", err)
		}
		c := palette[i%len(palette)]
		line.Color, marks.Color = c, c
		marks.Shape = draw.GlyphDrawer(shapes[i%len(shapes)])
		if strings.HasPrefix(w, "go.") {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(line, marks)
		p.Legend.Add(w, line, marks)
	}
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("bench: chart: %w", err)
	}
	return nil
}

// A palette that stays distinguishable for the eleven lines of the full
// table, and glyphs (eight, then again with other colours) for readers who
// cannot tell the colours apart.
var (
	palette = []color.Color{
		color.RGBA{0x1b, 0x9e, 0x77, 0xff}, color.RGBA{0xd9, 0x5f, 0x02, 0xff},
		color.RGBA{0x75, 0x70, 0xb3, 0xff}, color.RGBA{0xe7, 0x29, 0x8a, 0xff},
		color.RGBA{0x66, 0xa6, 0x1e, 0xff}, color.RGBA{0xe6, 0xab, 0x02, 0xff},
		color.RGBA{0xa6, 0x76, 0x1d, 0xff}, color.RGBA{0x33, 0x33, 0x33, 0xff},
		color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff},
		color.RGBA{0x17, 0xbe, 0xcf, 0xff},
	}
	shapes = []draw.GlyphDrawer{
		draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{},
		draw.PlusGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{},
	}
)

// integerTicks labels the process counts 1 to max, and nothing where the
// legend is.
type integerTicks struct{ max int }

func (t integerTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for i := 1; i <= t.max; i++ {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: fmt.Sprint(i)})
	}
	return ticks
}
