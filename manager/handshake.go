package manager

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// The handshake (docs/protocol.md, "Handshake") runs before any request:
//
//	server -> client  hello:   magic (8) | version (2) | flags (2) | server nonce (32)
//	client -> server  answer:  magic (8) | version (2) | flags (2) | client nonce (32) | client proof (32)
//	server -> client  verdict: code (1) | transport (1) | reserved (2) | server proof (32)
//
// With an auth key, client proof = HMAC-SHA256(key, "shmkit-manager client" |
// server nonce | client nonce) and server proof = HMAC-SHA256(key,
// "shmkit-manager server" | client nonce | server nonce); both are zero
// without one. The server sends its proof only after checking the client's,
// so it is no oracle for anyone without the key, and the client checks the
// server's before sending a request, so each side has proved the other
// knows the key. Fresh nonces on both sides defeat replay.

const (
	protocolVersion = 1
	nonceSize       = 32
	proofSize       = sha256.Size
	helloSize       = 8 + 2 + 2 + nonceSize
	answerSize      = helloSize + proofSize
	verdictSize     = 4 + proofSize
)

var magic = [8]byte{'S', 'H', 'M', 'K', 'I', 'T', 'M', 'G'}

// Hello flags.
const (
	helloAuth    = 1 << 0 // the server requires an auth key
	helloShm     = 1 << 1 // the server offers a shared-memory transport
	helloRefused = 1 << 2 // the server refuses this peer (uid); it closes next
	helloBells   = 1 << 3 // with helloShm: the server can wake through bells
)

// Answer flags.
const (
	answerShm   = 1 << 0 // the client asks for the shared-memory transport
	answerBells = 1 << 1 // with answerShm: and for bells
)

// Verdict codes.
const (
	verdictOK      = 0
	verdictAuth    = 1
	verdictVersion = 2
)

// Verdict transports.
const (
	transportStream = 0 // requests continue on the connection
	transportShm    = 1 // a memfd with two rings came with the verdict; futex wake-ups
	transportBells  = 2 // the same, and the server's bell; the client answers with its own
)

func newNonce() [nonceSize]byte {
	var n [nonceSize]byte
	rand.Read(n[:]) // crypto/rand.Read never fails on Linux
	return n
}

func proof(key []byte, label string, a, b []byte) []byte {
	if len(key) == 0 {
		return make([]byte, proofSize)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write(a)
	m.Write(b)
	return m.Sum(nil)
}

const (
	labelClient = "shmkit-manager client"
	labelServer = "shmkit-manager server"
)

type hello struct {
	version uint16
	flags   uint16
	nonce   [nonceSize]byte
}

func (h hello) append(b []byte) []byte {
	b = append(b, magic[:]...)
	b = binary.BigEndian.AppendUint16(b, h.version)
	b = binary.BigEndian.AppendUint16(b, h.flags)
	return append(b, h.nonce[:]...)
}

func parseHello(b []byte) (hello, error) {
	if !bytes.Equal(b[:8], magic[:]) {
		return hello{}, fmt.Errorf("%w: peer is not a shmkit manager", ErrProtocol)
	}
	h := hello{version: binary.BigEndian.Uint16(b[8:]), flags: binary.BigEndian.Uint16(b[10:])}
	copy(h.nonce[:], b[12:12+nonceSize])
	return h, nil
}

// serverHandshake runs the server's side on a fresh connection and
// returns the transport chosen: shared memory if offerShm and the client
// asks for it, with bells if the client can, and then only if futexes
// (the client cannot do bells) is true. sendVerdict writes the verdict,
// with the memfd (and the server's bell) when the transport is shared
// memory.
func serverHandshake(conn net.Conn, key []byte, offerShm, refuse bool, futexes func() bool,
	sendVerdict func(v []byte, transport byte) error) (transport byte, err error) {
	h := hello{version: protocolVersion, nonce: newNonce()}
	if len(key) > 0 {
		h.flags |= helloAuth
	}
	if offerShm {
		h.flags |= helloShm | helloBells
	}
	if refuse {
		h.flags |= helloRefused
	}
	if _, err := conn.Write(h.append(nil)); err != nil {
		return 0, err
	}
	if refuse {
		return 0, fmt.Errorf("%w: peer refused", ErrAuth)
	}
	buf := make([]byte, answerSize)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return 0, err
	}
	a, err := parseHello(buf)
	if err != nil {
		return 0, err
	}
	v := make([]byte, 4, verdictSize)
	if a.version < 1 || a.version > protocolVersion {
		v[0] = verdictVersion
		conn.Write(append(v, make([]byte, proofSize)...))
		return 0, fmt.Errorf("%w: client speaks version %d", ErrProtocol, a.version)
	}
	want := proof(key, labelClient, h.nonce[:], a.nonce[:])
	if !hmac.Equal(want, buf[helloSize:]) {
		v[0] = verdictAuth
		conn.Write(append(v, make([]byte, proofSize)...))
		return 0, fmt.Errorf("%w: wrong client proof", ErrAuth)
	}
	switch {
	case !offerShm || a.flags&answerShm == 0:
	case a.flags&answerBells != 0:
		transport = transportBells
	case futexes():
		transport = transportShm
	}
	v[1] = transport
	v = append(v, proof(key, labelServer, a.nonce[:], h.nonce[:])...)
	return transport, sendVerdict(v, transport)
}

// clientHandshake runs the client's side. recvVerdict reads the verdict,
// and the descriptors with it if any. It returns the transport the server
// chose.
func clientHandshake(conn net.Conn, key []byte, askShm, askBells bool,
	recvVerdict func(v []byte) error) (transport byte, err error) {
	buf := make([]byte, helloSize)
	if _, err := io.ReadFull(conn, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, fmt.Errorf("%w: server closed the connection during the handshake", ErrProtocol)
		}
		return 0, err
	}
	h, err := parseHello(buf)
	if err != nil {
		return 0, err
	}
	switch {
	case h.version < protocolVersion:
		// A newer server announces the highest version it speaks and
		// accepts the client's choice of any it supports.
		return 0, fmt.Errorf("%w: server speaks version %d, this client %d", ErrProtocol, h.version, protocolVersion)
	case h.flags&helloRefused != 0:
		return 0, fmt.Errorf("%w: server refused this user", ErrAuth)
	case h.flags&helloAuth != 0 && len(key) == 0:
		return 0, fmt.Errorf("%w: server requires an auth key", ErrAuth)
	case h.flags&helloAuth == 0 && len(key) > 0:
		return 0, fmt.Errorf("%w: server does not know the auth key", ErrAuth)
	}
	a := hello{version: protocolVersion, nonce: newNonce()}
	if askShm && h.flags&helloShm != 0 {
		a.flags |= answerShm
		if h.flags&helloBells != 0 && askBells {
			a.flags |= answerBells
		}
	}
	msg := append(a.append(nil), proof(key, labelClient, h.nonce[:], a.nonce[:])...)
	if _, err := conn.Write(msg); err != nil {
		return 0, err
	}
	v := make([]byte, verdictSize)
	if err := recvVerdict(v); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, fmt.Errorf("%w: server closed the connection during the handshake", ErrProtocol)
		}
		return 0, err
	}
	switch v[0] {
	case verdictOK:
	case verdictAuth:
		return 0, fmt.Errorf("%w: server rejected the auth key", ErrAuth)
	case verdictVersion:
		return 0, fmt.Errorf("%w: server rejected version %d", ErrProtocol, protocolVersion)
	default:
		return 0, fmt.Errorf("%w: unknown verdict %d", ErrProtocol, v[0])
	}
	if !hmac.Equal(v[4:], proof(key, labelServer, a.nonce[:], h.nonce[:])) {
		return 0, fmt.Errorf("%w: server's proof is wrong", ErrAuth)
	}
	switch v[1] {
	case transportStream:
		return transportStream, nil
	case transportShm, transportBells:
		if a.flags&answerShm == 0 || (v[1] == transportBells && a.flags&answerBells == 0) {
			return 0, fmt.Errorf("%w: shared memory not asked for", ErrProtocol)
		}
		return v[1], nil
	}
	return 0, fmt.Errorf("%w: unknown transport %d", ErrProtocol, v[1])
}
