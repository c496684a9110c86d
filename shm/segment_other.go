//go:build !linux

package shm

import "os"

const tempPrefix = ".shmkit-tmp-"

func sysCreate(path string, size int64, o options) (int, []byte, header, error) {
	return -1, nil, header{}, ErrNotSupported
}

func sysCreateAnonymous(size int64) (int, []byte, header, error) {
	return -1, nil, header{}, ErrNotSupported
}

func sysOpen(path string) (int, []byte, header, error) { return -1, nil, header{}, ErrNotSupported }

func sysFromFile(f *os.File) (int, []byte, header, error) {
	return -1, nil, header{}, ErrNotSupported
}

func sysRemove(path string) error { return ErrNotSupported }

func sysDup(fd int, name string) (*os.File, error) { return nil, ErrNotSupported }

func sysClose(fd int, mem []byte) error { return nil }

func sysRelease(mem []byte) {}
