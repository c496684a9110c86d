package main

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/shmkit/shmkit/internal/plotticks"
)

// Sizes of the chart: a panel per family, two to a row, each with its
// legend to the right of its plot; the title and the machine line above.
const (
	panelWidth  = 6.4 * vg.Inch
	panelHeight = 3.7 * vg.Inch
	legendWidth = 1.75 * vg.Inch
	chartDPI    = 120
)

// drawChart draws the report to path, a PNG or an SVG (which embeds its
// fonts, so that it looks the same wherever it is opened): total
// throughput against the number of processes, on logarithmic axes, one
// panel per family.
func drawChart(path string, rep *benchReport) error {
	var panels []familyReport
	for _, f := range rep.Families {
		for _, r := range f.Rows {
			if len(r.Cells) > 0 {
				panels = append(panels, f)
				break
			}
		}
	}
	if len(panels) == 0 {
		return fmt.Errorf("bench: chart: nothing was measured")
	}
	cols := min(2, len(panels))
	rows := (len(panels) + cols - 1) / cols
	w := vg.Length(cols) * panelWidth

	// The header: what is drawn, and on what machine, in as many lines
	// as the width needs.
	title := textStyle(15, color.Black)
	title.XAlign, title.YAlign = draw.XCenter, draw.YTop
	sub := textStyle(10.5, color.Gray{Y: 0x40})
	sub.XAlign, sub.YAlign = draw.XCenter, draw.YTop
	type headerLine struct {
		sty  text.Style
		text string
	}
	var header []headerLine
	for _, l := range fitLines(title, "shmkit bench: total throughput of all processes (M ops/s, log scale)", w-0.3*vg.Inch) {
		header = append(header, headerLine{title, l})
	}
	for _, l := range fitLines(sub, rep.Machine.String(), w-0.3*vg.Inch) {
		header = append(header, headerLine{sub, l})
	}
	headerHeight := 0.3 * vg.Inch
	for _, l := range header {
		headerHeight += l.sty.Height(l.text) * 1.3
	}
	h := vg.Length(rows)*panelHeight + headerHeight

	var canvas interface {
		vg.CanvasSizer
		io.WriterTo
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		canvas = vgsvg.NewWith(vgsvg.UseWH(w, h), vgsvg.EmbedFonts(true))
	case ".png":
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(chartDPI))}
	default:
		return fmt.Errorf("bench: chart %s: the name must end in .svg or .png", path)
	}
	dc := draw.New(canvas)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	y := dc.Max.Y - 0.12*vg.Inch
	for _, l := range header {
		dc.FillText(l.sty, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: y}, l.text)
		y -= l.sty.Height(l.text) * 1.3
	}

	body := draw.Crop(dc, 0, 0, 0, -headerHeight)
	tiles := draw.Tiles{Cols: cols, Rows: rows, PadTop: 0.05 * vg.Inch, PadBottom: 0.1 * vg.Inch,
		PadLeft: 0.1 * vg.Inch, PadRight: 0.1 * vg.Inch, PadX: 0.2 * vg.Inch, PadY: 0.2 * vg.Inch}
	for i, f := range panels {
		tile := tiles.At(body, i%cols, i/cols)
		if err := drawPanel(tile, f, rep.Procs); err != nil {
			return err
		}
	}

	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: chart: %w", err)
	}
	if _, err := canvas.WriteTo(out); err != nil {
		out.Close()
		return fmt.Errorf("bench: chart: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("bench: chart: %w", err)
	}
	return nil
}

// drawPanel draws one family: its plot on the left of tile, its legend on
// the right, clear of the lines.
func drawPanel(tile draw.Canvas, f familyReport, procs []int) error {
	p := plot.New()
	p.Title.Text = f.Title
	p.Title.TextStyle.Font.Size = 12
	p.Title.Padding = 0.08 * vg.Inch
	p.X.Label.Text = "P (processes, connections or workers)"
	p.Y.Label.Text = "M ops/s"
	// Only the sizes change: the styles hold the alignments too.
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = 10.5
		a.Tick.Label.Font.Size = 10
	}
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	lo, hi := float64(procs[0]), float64(procs[len(procs)-1])
	p.X.Min, p.X.Max = lo/1.2, hi*1.2
	p.X.Tick.Marker = plotticks.Counts(procs)

	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{Y: 0xdd}
	grid.Horizontal.Color = color.Gray{Y: 0xdd}
	p.Add(grid)

	leg := plot.NewLegend()
	leg.TextStyle = textStyle(10, color.Black)
	leg.Top, leg.Left = true, true
	leg.ThumbnailWidth = 0.45 * vg.Inch
	leg.Padding = 0.04 * vg.Inch
	ymin, ymax := math.Inf(1), math.Inf(-1)
	var notes []string // rows not drawn, and why
	for i, r := range f.Rows {
		var pts plotter.XYs
		for _, c := range r.Cells {
			if c.MOpsPerS > 0 {
				pts = append(pts, plotter.XY{X: float64(c.Procs), Y: c.MOpsPerS})
				ymin, ymax = min(ymin, c.MOpsPerS), max(ymax, c.MOpsPerS)
			}
		}
		if len(pts) == 0 {
			why := r.Missing
			if why == "" {
				why = "failed"
			}
			notes = append(notes, r.Workload+":", "  "+why)
			continue
		}
		line, marks, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("bench: chart: %w", err)
		}
		c := palette[i%len(palette)]
		line.Color, marks.Color = c, c
		line.Width = vg.Points(1.8)
		line.Dashes = kindDashes[r.Kind]
		marks.Shape = shapes[i%len(shapes)]
		marks.Radius = vg.Points(3.5)
		p.Add(line, marks)
		leg.Add(r.Workload, line, marks)
	}
	if ymax < ymin { // nothing measured: an empty panel with its reasons
		ymin, ymax = 0.1, 1
	}
	// A margin above and below, at least a factor of ten in all, so that
	// close lines are not stretched over the whole height.
	span := max(math.Log10(ymax/ymin), 1)
	pad := (span-math.Log10(ymax/ymin))/2 + span*0.08
	p.Y.Min, p.Y.Max = ymin/math.Pow(10, pad), ymax*math.Pow(10, pad)
	p.Y.Tick.Marker = plotticks.Log{}

	p.Draw(draw.Crop(tile, 0, -legendWidth, 0, 0))
	// The legend starts at the level of the plot's top edge, below the
	// panel's title.
	top := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
	legC := draw.Crop(tile, tile.Max.X-tile.Min.X-legendWidth+0.15*vg.Inch, 0, 0, -top)
	leg.Draw(legC)
	// The rows without a line, under the legend, in grey.
	note := textStyle(9, color.Gray{Y: 0x55})
	note.YAlign = draw.YTop
	y := leg.Rectangle(legC).Min.Y - 0.15*vg.Inch
	for _, n := range notes {
		for _, l := range wrap(n, 30) {
			legC.FillText(note, vg.Point{X: legC.Min.X, Y: y}, l)
			y -= note.Height(l) * 1.15
		}
	}
	return nil
}

// wrap breaks s into lines of at most n characters at spaces; the lines
// after the first are indented like the first.
func wrap(s string, n int) []string {
	indent := s[:len(s)-len(strings.TrimLeft(s, " "))]
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > n {
			lines = append(lines, line)
			line = ""
		}
		if line == "" {
			line = indent + w
		} else {
			line += " " + w
		}
	}
	return append(lines, line)
}

// fitLines breaks s at ", " into lines no wider than width in sty.
func fitLines(sty text.Style, s string, width vg.Length) []string {
	var lines []string
	line := ""
	for i, part := range strings.SplitAfter(s, ", ") {
		if i > 0 && sty.Width(line+strings.TrimSuffix(part, ", ")) > width {
			lines = append(lines, strings.TrimSuffix(line, ", "))
			line = ""
		}
		line += part
	}
	return append(lines, line)
}

// textStyle is the plot's default font at size points.
func textStyle(size vg.Length, c color.Color) text.Style {
	return text.Style{Color: c, Font: font.From(plot.DefaultFont, size), Handler: plot.DefaultTextHandler}
}

// Colours that colour-blind readers can tell apart (Okabe and Ito), glyphs
// for when they cannot, and dashes that tell the kinds of row apart: ours
// solid, Go's in-process baseline dashed, Python's and Redis's dotted.
var (
	palette = []color.Color{
		color.RGBA{0x00, 0x72, 0xb2, 0xff}, // blue
		color.RGBA{0xd5, 0x5e, 0x00, 0xff}, // vermillion
		color.RGBA{0x00, 0x9e, 0x73, 0xff}, // bluish green
		color.RGBA{0xcc, 0x79, 0xa7, 0xff}, // reddish purple
		color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // orange
		color.RGBA{0x56, 0xb4, 0xe9, 0xff}, // sky blue
		color.RGBA{0x00, 0x00, 0x00, 0xff}, // black
	}
	shapes = []draw.GlyphDrawer{
		draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{},
		draw.PlusGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{},
	}
	kindDashes = map[string][]vg.Length{
		kindGo:     {vg.Points(6), vg.Points(3)},
		kindPython: {vg.Points(2), vg.Points(2)},
		kindRedis:  {vg.Points(1), vg.Points(2.5)},
	}
)
