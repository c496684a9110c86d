// Command nomain is a program that forgets to call process.Main, for
// TestForgottenMain. Its workers run this main too instead of their job;
// there Prestart and Run fail with ErrNoMain at once, and what they print
// goes to a worker's standard output before its job, /dev/null.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/shmkit/shmkit/process"
)

var echo = process.Register("nomain.echo", func(ctx context.Context, n int) (int, error) {
	return n, nil
})

func main() {
	// process.Main() is missing here, on purpose.

	// Should the package let a worker start workers, each would run this
	// main and start more without end: stop at the second generation.
	gen, _ := strconv.Atoi(os.Getenv("NOMAIN_GENERATION"))
	if gen == 2 {
		os.Exit(1)
	}
	os.Setenv("NOMAIN_GENERATION", strconv.Itoa(gen+1))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := process.Prestart(ctx)
	fmt.Printf("Prestart: %v: %v\n", errors.Is(err, process.ErrNoMain), err)
	_, err = echo.Run(ctx, 1)
	fmt.Printf("Run: %v: %v\n", errors.Is(err, process.ErrNoMain), err)
	process.StopSpares()
}
