package toolchain

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// copyTree copies the directory tree src into dst, which must be empty or
// not exist yet.
// Regular files keep their permission bits plus owner write (a GOROOT taken
// from the module cache is read-only, and the copy must be patched and later
// removable); symbolic links are recreated as they are. File contents are
// copied by a few workers in parallel (on Linux io.Copy between files uses
// copy_file_range, so the data need not pass through this process).
func copyTree(src, dst string) error {
	type job struct {
		src, dst string
		mode     fs.FileMode
	}
	jobs := make(chan job, 256)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if failed() {
					continue // drain
				}
				if err := copyFile(j.src, j.dst, j.mode); err != nil {
					fail(err)
				}
			}
		}()
	}
	walkErr := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if failed() {
			return fs.SkipAll
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if rel == "." {
				return os.MkdirAll(target, fi.Mode().Perm()|0o700)
			}
			return os.Mkdir(target, fi.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			jobs <- job{path, target, fi.Mode().Perm()}
			return nil
		default:
			return fmt.Errorf("%s: unexpected file type %v in a Go distribution", path, d.Type())
		}
	})
	close(jobs)
	wg.Wait()
	if walkErr != nil {
		return fmt.Errorf("copying %s: %w", src, walkErr)
	}
	if firstErr != nil {
		return fmt.Errorf("copying %s: %w", src, firstErr)
	}
	return nil
}

// copyEntry copies one file or symbolic link described by fi.
func copyEntry(src, dst string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		link, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(link, dst)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	return copyFile(src, dst, fi.Mode().Perm())
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
