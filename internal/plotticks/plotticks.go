// Package plotticks holds the axis tick markers of shmkit's charts
// (shmkit bench and internal/cmd/clientchart), for gonum.org/v1/plot.
package plotticks

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot"
)

// Counts labels the given counts (the process counts measured, say) and
// nothing else.
type Counts []int

func (t Counts) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for _, p := range t {
		ticks = append(ticks, plot.Tick{Value: float64(p), Label: fmt.Sprint(p)})
	}
	return ticks
}

// Log labels 1, 2 and 5 times the powers of ten in the range (only
// the powers of ten where that would make too many labels, and 3 and 7
// too where there would be too few).
type Log struct{}

func (Log) Ticks(lo, hi float64) []plot.Tick {
	steps := []float64{1, 2, 5}
	switch span := math.Log10(hi / lo); {
	case span > 3:
		steps = []float64{1}
	case span < 1.2:
		steps = []float64{1, 2, 3, 5, 7}
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, s := range steps {
			v := s * math.Pow(10, e)
			if v >= lo && v <= hi {
				ticks = append(ticks, plot.Tick{Value: v, Label: Label(v)})
			}
		}
	}
	return ticks
}

// Label writes v without trailing zeros: 0.002, 0.5, 20, 1000.
func Label(v float64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.6g", v), ".")
}
