// Package queue provides queues and pipes in shared memory, between
// processes of one machine.
package queue
