// Command clientchart draws docs/manager-clients.png, the manager's
// throughput against the number of clients next to Redis's, idle and on
// a busy machine, from the output of the manager's BenchmarkClients and
// BenchmarkBusy (medians over -count runs):
//
//	go test -run='^$' -bench='BenchmarkClients/op=.*/transport=shm|BenchmarkBusy' -count=5 ./manager > out.txt
//	go run ./internal/cmd/clientchart -o docs/manager-clients.png out.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/shmkit/shmkit/internal/plotticks"
)

func main() {
	out := flag.String("o", "manager-clients.png", "the PNG to write")
	note := flag.String("note", "", "a line under the title (the machine)")
	flag.Parse()
	if !strings.HasSuffix(*out, ".png") {
		fmt.Fprintln(os.Stderr, "clientchart: -o must name a .png file")
		os.Exit(2)
	}
	var in []io.Reader
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "clientchart:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = append(in, f)
	}
	if len(in) == 0 {
		in = append(in, os.Stdin)
	}
	s, err := parse(io.MultiReader(in...))
	if err == nil {
		err = draw2(*out, *note, s)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clientchart:", err)
		os.Exit(1)
	}
}

// key is one series: an operation, idle or busy, and an engine.
type key struct {
	op     string
	busy   bool
	engine string // "shmkit" or "redis"
}

// samples holds every measured figure, by series and number of clients.
type samples map[key]map[int][]float64

var line = regexp.MustCompile(`^Benchmark(Clients|Busy)/op=(\w+)/clients=(\d+)/transport=shm\S*\s+\d+\s+(.*)$`)

func parse(r io.Reader) (samples, error) {
	s := samples{}
	add := func(k key, clients int, v float64) {
		if s[k] == nil {
			s[k] = map[int][]float64{}
		}
		s[k][clients] = append(s[k][clients], v)
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		clients, _ := strconv.Atoi(m[3])
		f := strings.Fields(m[4])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("bad figure %q in %q", f[i], sc.Text())
			}
			k := key{op: m[2], busy: m[1] == "Busy"}
			switch f[i+1] {
			case "kreq/s":
				k.engine = "shmkit"
			case "redis-kreq/s":
				k.engine = "redis"
			default:
				continue
			}
			add(k, clients, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("no BenchmarkClients or BenchmarkBusy lines in the input")
	}
	return s, nil
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

var (
	shmkitColor = color.RGBA{0x1b, 0x6e, 0xc2, 0xff}
	redisColor  = color.RGBA{0xc2, 0x3b, 0x22, 0xff}
)

// draw2 draws one panel per operation, side by side, with one legend to
// their right.
func draw2(path, note string, s samples) error {
	const w, h = 11 * vg.Inch, 5 * vg.Inch
	legendW, top := 1.5*vg.Inch, vg.Points(40)
	img := vgimg.New(w, h)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	lo, hi := s.bounds()
	legend := plot.NewLegend()
	ops := []string{"get", "set"}
	plots := [][]*plot.Plot{{}}
	for i, op := range ops {
		p, err := panel(op, s, lo, hi, &legend, i == 0)
		if err != nil {
			return err
		}
		plots[0] = append(plots[0], p)
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(ops), PadX: vg.Points(24), PadTop: vg.Points(4), PadBottom: vg.Points(6), PadLeft: vg.Points(6)}
	canvases := plot.Align(plots, tiles, draw.Crop(dc, 0, -legendW, 0, -top))
	for i, p := range plots[0] {
		p.Draw(canvases[0][i])
	}
	legend.Top, legend.Left = true, true
	legend.Padding = vg.Points(4)
	legend.XOffs, legend.YOffs = vg.Points(12), -vg.Points(30)
	legend.Draw(draw.Crop(dc, w-legendW, 0, 0, -top))
	sty := plot.New().Title.TextStyle
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YTop
	sty.Font.Size = vg.Points(9)
	for i, t := range []string{"busy: two CPU-bound", "processes spin at the", "default priority"} {
		dc.FillText(sty, vg.Point{X: w - legendW + vg.Points(12), Y: h - top - vg.Points(110) - vg.Length(i)*vg.Points(11)}, t)
	}

	// The title and the machine line above the panels.
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YTop
	sty.Font.Size = vg.Points(14)
	dc.FillText(sty, vg.Point{X: w / 2, Y: h - vg.Points(6)}, "shmkit manager vs Redis: requests/s by number of clients (one connection each)")
	if note != "" {
		sty.Font.Size = vg.Points(10)
		dc.FillText(sty, vg.Point{X: w / 2, Y: h - vg.Points(24)}, note)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// bounds returns the smallest and largest medians, for one Y range in
// every panel.
func (s samples) bounds() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, byClients := range s {
		for _, v := range byClients {
			m := median(v)
			lo, hi = min(lo, m), max(hi, m)
		}
	}
	return lo, hi
}

// panel draws the series of op, adding them to legend if first.
func panel(op string, s samples, lo, hi float64, legend *plot.Legend, first bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "dict " + op
	p.X.Label.Text = "clients"
	p.Y.Label.Text = "k requests/s (log scale)"
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plotticks.Log{}
	p.Y.Min, p.Y.Max = lo/1.3, hi*1.3
	p.Add(plotter.NewGrid())
	var counts []int
	for _, engine := range []string{"shmkit", "redis"} {
		for _, busy := range []bool{false, true} {
			k := key{op: op, busy: busy, engine: engine}
			byClients := s[k]
			if len(byClients) == 0 {
				continue
			}
			var pts plotter.XYs
			for c := range byClients {
				pts = append(pts, plotter.XY{X: float64(c), Y: median(byClients[c])})
				if !slices.Contains(counts, c) {
					counts = append(counts, c)
				}
			}
			slices.SortFunc(pts, func(a, b plotter.XY) int { return int(a.X - b.X) })
			l, m, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, err
			}
			c := shmkitColor
			if engine == "redis" {
				c = redisColor
			}
			l.Color, m.Color = c, c
			l.Width = vg.Points(1.5)
			m.Radius = vg.Points(3)
			label := map[string]string{"shmkit": "shmkit", "redis": "Redis"}[engine]
			if busy {
				// Measured at a few counts only: marks, no line
				// between them.
				m.Shape = draw.TriangleGlyph{}
				m.Radius = vg.Points(4)
				p.Add(m)
				if first {
					legend.Add(label+", busy", m)
				}
				continue
			}
			m.Shape = draw.CircleGlyph{}
			if engine == "redis" {
				m.Shape = draw.SquareGlyph{}
			}
			p.Add(l, m)
			if first {
				legend.Add(label+", idle", l, m)
			}
		}
	}
	slices.Sort(counts)
	p.X.Tick.Marker = plotticks.Counts(counts)
	if len(counts) > 0 {
		p.X.Min, p.X.Max = float64(counts[0])/1.2, float64(counts[len(counts)-1])*1.2
	}
	return p, nil
}
