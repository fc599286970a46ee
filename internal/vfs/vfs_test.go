package vfs

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// fsUnderTest gives each implementation a fresh root directory.
var fsUnderTest = []struct {
	name string
	new  func(t *testing.T) (FS, string)
}{
	{"os", func(t *testing.T) (FS, string) { return Default, t.TempDir() }},
	{"mem", func(t *testing.T) (FS, string) { return NewMem(), "/data" }},
	{"errorfs-passthrough", func(t *testing.T) (FS, string) {
		return NewErrorFS(NewMem(), InjectorFunc(func(Op) error { return nil })), "/data"
	}},
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, fs FS, name, data string, sync bool) {
	t.Helper()
	f, err := fs.Create(name)
	must(t, err)
	_, err = f.Write([]byte(data))
	must(t, err)
	if sync {
		must(t, f.Sync())
	}
	must(t, f.Close())
}

func readFile(t *testing.T, fs FS, name string) string {
	t.Helper()
	f, err := fs.Open(name)
	must(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	must(t, err)
	return string(b)
}

func TestFSBasics(t *testing.T) {
	for _, tc := range fsUnderTest {
		t.Run(tc.name, func(t *testing.T) {
			fs, root := tc.new(t)
			dir := filepath.Join(root, "a", "b")
			must(t, fs.MkdirAll(dir, 0o755))
			must(t, fs.MkdirAll(dir, 0o755)) // idempotent

			writeFile(t, fs, filepath.Join(dir, "z"), "hello", false)
			writeFile(t, fs, filepath.Join(dir, "y"), "world", false)
			names, err := fs.List(dir)
			must(t, err)
			if !slices.Equal(names, []string{"y", "z"}) {
				t.Fatalf("List = %v", names)
			}

			// OpenReadWrite keeps the content, Create truncates it.
			f, err := fs.OpenReadWrite(filepath.Join(dir, "z"))
			must(t, err)
			_, err = f.WriteAt([]byte("J"), 0)
			must(t, err)
			fi, err := f.Stat()
			must(t, err)
			if fi.Size() != 5 {
				t.Fatalf("size after WriteAt = %d", fi.Size())
			}
			buf := make([]byte, 10)
			n, err := f.ReadAt(buf, 2)
			if n != 3 || err != io.EOF || string(buf[:n]) != "llo" {
				t.Fatalf("ReadAt past end = %d %v %q", n, err, buf[:n])
			}
			must(t, f.Truncate(2))
			must(t, f.Preallocate(0, 1<<20))
			must(t, f.Close())
			if got := readFile(t, fs, filepath.Join(dir, "z")); got != "Je" {
				t.Fatalf("content = %q", got)
			}
			writeFile(t, fs, filepath.Join(dir, "z"), "x", false)
			if got := readFile(t, fs, filepath.Join(dir, "z")); got != "x" {
				t.Fatalf("content after Create = %q", got)
			}

			// A read-only file refuses writes.
			ro, err := fs.Open(filepath.Join(dir, "y"))
			must(t, err)
			if _, err := ro.Write([]byte("no")); err == nil {
				t.Fatal("write to read-only file succeeded")
			}
			must(t, ro.Close())

			must(t, fs.Rename(filepath.Join(dir, "y"), filepath.Join(dir, "w")))
			if _, err := fs.Stat(filepath.Join(dir, "y")); !os.IsNotExist(err) {
				t.Fatalf("Stat of renamed file: %v", err)
			}
			if got := readFile(t, fs, filepath.Join(dir, "w")); got != "world" {
				t.Fatalf("renamed content = %q", got)
			}
			must(t, fs.SyncDir(dir))
			must(t, fs.Remove(filepath.Join(dir, "w")))
			if _, err := fs.Open(filepath.Join(dir, "w")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("Open of removed file: %v", err)
			}
			if err := fs.Remove(filepath.Join(root, "a")); err == nil {
				t.Fatal("Remove of a non-empty directory succeeded")
			}
			must(t, fs.RemoveAll(filepath.Join(root, "a")))
			must(t, fs.RemoveAll(filepath.Join(root, "a")))
			if _, err := fs.List(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("List of removed dir: %v", err)
			}
		})
	}
}

func TestOSFileFd(t *testing.T) {
	f, err := Default.Create(filepath.Join(t.TempDir(), "f"))
	must(t, err)
	defer f.Close()
	if f.Fd() == InvalidFd {
		t.Fatal("OS file has no descriptor")
	}
	if _, ok := OSFile(f); !ok {
		t.Fatal("OSFile did not unwrap an OS file")
	}
	m, err := NewMem().Create("/f")
	must(t, err)
	if m.Fd() != InvalidFd {
		t.Fatal("mem file claims a descriptor")
	}
}

func TestMemCrashClone(t *testing.T) {
	type want map[string]string // path -> content; absent means must not exist
	tests := []struct {
		name string
		run  func(t *testing.T, fs *MemFS)
		want want
		gone []string
	}{
		{
			name: "synced file and dir entry survive",
			run: func(t *testing.T, fs *MemFS) {
				must(t, fs.MkdirAll("/d", 0o755))
				must(t, fs.SyncDir("/"))
				writeFile(t, fs, "/d/f", "abc", true)
				must(t, fs.SyncDir("/d"))
			},
			want: want{"/d/f": "abc"},
		},
		{
			name: "unsynced writes are lost",
			run: func(t *testing.T, fs *MemFS) {
				f, err := fs.Create("/f")
				must(t, err)
				_, _ = f.Write([]byte("abc"))
				must(t, f.Sync())
				_, _ = f.Write([]byte("def"))
				must(t, fs.SyncDir("/"))
			},
			want: want{"/f": "abc"},
		},
		{
			name: "file synced but its entry not is gone",
			run: func(t *testing.T, fs *MemFS) {
				writeFile(t, fs, "/f", "abc", true)
			},
			gone: []string{"/f"},
		},
		{
			name: "directory not synced in its parent is gone",
			run: func(t *testing.T, fs *MemFS) {
				must(t, fs.MkdirAll("/d", 0o755))
				writeFile(t, fs, "/d/f", "abc", true)
				must(t, fs.SyncDir("/d"))
			},
			gone: []string{"/d", "/d/f"},
		},
		{
			name: "unsynced rename rolls back",
			run: func(t *testing.T, fs *MemFS) {
				writeFile(t, fs, "/a", "abc", true)
				must(t, fs.SyncDir("/"))
				must(t, fs.Rename("/a", "/b"))
			},
			want: want{"/a": "abc"},
			gone: []string{"/b"},
		},
		{
			name: "synced rename sticks",
			run: func(t *testing.T, fs *MemFS) {
				writeFile(t, fs, "/a", "abc", true)
				must(t, fs.SyncDir("/"))
				must(t, fs.Rename("/a", "/b"))
				must(t, fs.SyncDir("/"))
			},
			want: want{"/b": "abc"},
			gone: []string{"/a"},
		},
		{
			name: "unsynced remove rolls back",
			run: func(t *testing.T, fs *MemFS) {
				writeFile(t, fs, "/a", "abc", true)
				must(t, fs.SyncDir("/"))
				must(t, fs.Remove("/a"))
			},
			want: want{"/a": "abc"},
		},
		{
			name: "unsynced truncate and overwrite roll back",
			run: func(t *testing.T, fs *MemFS) {
				f, err := fs.Create("/f")
				must(t, err)
				_, _ = f.Write([]byte("abcdef"))
				must(t, f.Sync())
				must(t, f.Truncate(2))
				_, _ = f.Write([]byte("XYZ")) // position 6: zero-extends
				_, _ = f.WriteAt([]byte("Q"), 0)
				must(t, fs.SyncDir("/"))
			},
			want: want{"/f": "abcdef"},
		},
		{
			name: "synced truncate sticks",
			run: func(t *testing.T, fs *MemFS) {
				f, err := fs.Create("/f")
				must(t, err)
				_, _ = f.Write([]byte("abcdef"))
				must(t, f.Sync())
				must(t, f.Truncate(2))
				_, _ = f.WriteAt([]byte("Z"), 2)
				must(t, f.Sync())
				must(t, fs.SyncDir("/"))
			},
			want: want{"/f": "abZ"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := NewMem()
			tc.run(t, fs)
			c := fs.CrashClone()
			for p, content := range tc.want {
				if got := readFile(t, c, p); got != content {
					t.Errorf("%s = %q, want %q", p, got, content)
				}
			}
			for _, p := range tc.gone {
				if _, err := c.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s survived the crash (err %v)", p, err)
				}
			}
			// The clone is itself crashable and durable as cloned.
			cc := c.CrashClone()
			for p, content := range tc.want {
				if got := readFile(t, cc, p); got != content {
					t.Errorf("second clone: %s = %q, want %q", p, got, content)
				}
			}
		})
	}
}

func TestMemCrashCloneRandomTail(t *testing.T) {
	fs := NewMem()
	f, err := fs.Create("/f")
	must(t, err)
	must(t, fs.SyncDir("/"))
	_, _ = f.Write([]byte("0123456789"))
	must(t, f.Sync())
	tail := []byte("abcdefghijklmnopqrstuvwxyz")
	_, _ = f.Write(tail)
	rng := rand.New(rand.NewSource(1))
	lengths := map[int]bool{}
	for range 200 {
		got := readFile(t, fs.CrashClone(KeepRandomUnsyncedTail(rng)), "/f")
		if !bytes.HasPrefix([]byte(got), []byte("0123456789")) || !bytes.HasPrefix(tail, []byte(got[10:])) {
			t.Fatalf("crash left %q: not synced bytes + a prefix of the tail", got)
		}
		lengths[len(got)] = true
	}
	if len(lengths) < 10 {
		t.Fatalf("only %d distinct lengths survived: the tail is not random", len(lengths))
	}
	// The original is untouched by cloning.
	if got := readFile(t, fs, "/f"); got != "0123456789"+string(tail) {
		t.Fatalf("original changed: %q", got)
	}
}

// TestMemSyncedSurvivesCopyOnWrite checks that writes after a Sync never leak
// into the synced image through a shared backing array.
func TestMemSyncedSurvivesCopyOnWrite(t *testing.T) {
	fs := NewMem()
	f, err := fs.Create("/f")
	must(t, err)
	must(t, fs.SyncDir("/"))
	_, _ = f.Write(make([]byte, 0, 64)) // nothing
	_, _ = f.Write([]byte("aaaa"))
	must(t, f.Sync())
	must(t, f.Truncate(1))
	_, _ = f.Write([]byte("bb")) // position 4
	_, _ = f.WriteAt([]byte("c"), 1)
	if got := readFile(t, fs.CrashClone(), "/f"); got != "aaaa" {
		t.Fatalf("synced image = %q, want aaaa", got)
	}
	if got := readFile(t, fs, "/f"); got != "ac\x00\x00bb" {
		t.Fatalf("current = %q", got)
	}
}

func TestErrorFS(t *testing.T) {
	tests := []struct {
		name string
		inj  Injector
		run  func(fs FS) error
		want error // errors.Is target; nil means success
		file string
	}{
		{
			name: "write budget makes a short write",
			inj:  FailWritesAfter(5, syscall.ENOSPC),
			run: func(fs FS) error {
				f, err := fs.Create("/f")
				if err != nil {
					return err
				}
				if _, err := f.Write([]byte("abc")); err != nil {
					return err
				}
				n, err := f.Write([]byte("defg"))
				if n != 2 {
					return errors.New("short write did not write what fit")
				}
				return err
			},
			want: syscall.ENOSPC,
			file: "abcde",
		},
		{
			name: "one shot sync failure",
			inj:  FailNext(syscall.EIO, OpSync),
			run: func(fs FS) error {
				f, err := fs.Create("/f")
				if err != nil {
					return err
				}
				_, _ = f.Write([]byte("x"))
				first := f.Sync()
				if err := f.Sync(); err != nil {
					return errors.New("second sync failed too")
				}
				return first
			},
			want: syscall.EIO,
			file: "x",
		},
		{
			name: "always fails syncdir",
			inj:  Always(ErrInjected, OpSyncDir),
			run: func(fs FS) error {
				writeFile(t, fs, "/f", "ok", true)
				return fs.SyncDir("/")
			},
			want: ErrInjected,
			file: "ok",
		},
		{
			name: "path-filtered injector",
			inj: InjectorFunc(func(op Op) error {
				if op.Kind == OpCreate && op.Path == "/bad" {
					return syscall.EACCES
				}
				return nil
			}),
			run: func(fs FS) error {
				writeFile(t, fs, "/f", "fine", false)
				_, err := fs.Create("/bad")
				return err
			},
			want: syscall.EACCES,
			file: "fine",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := NewMem()
			err := tc.run(NewErrorFS(mem, tc.inj))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var pe *os.PathError
			if tc.want != nil && !errors.As(err, &pe) {
				t.Fatalf("injected error %T is not a *os.PathError", err)
			}
			if got := readFile(t, mem, "/f"); got != tc.file {
				t.Fatalf("file = %q, want %q", got, tc.file)
			}
		})
	}
}

func TestOneShotRearm(t *testing.T) {
	o := FailNext(ErrInjected, OpWrite)
	fs := NewErrorFS(NewMem(), o)
	f, err := fs.Create("/f")
	must(t, err)
	results := []bool{}
	for i := range 4 {
		if i == 2 {
			o.Arm()
		}
		_, err := f.Write([]byte("x"))
		results = append(results, err != nil)
	}
	if !slices.Equal(results, []bool{true, false, true, false}) || o.Fired() != 2 {
		t.Fatalf("failures %v fired %d", results, o.Fired())
	}
}
