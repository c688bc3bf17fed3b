package api

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/limiquantix/limiquantix/storage"
	"github.com/limiquantix/limiquantix/store"
	"github.com/limiquantix/limiquantix/vmm"
)

func toAPIImage(im store.Image) Image {
	return Image{Name: im.Name, Format: im.Format, Size: im.Size, VirtualSize: im.VirtualSize, SHA256: im.SHA256,
		Kernel: im.Kernel != "", Initrd: im.Initrd != "", Cmdline: im.Cmdline, CreatedAt: im.CreatedAt}
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	ims, err := s.images.List(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeList(w, ims, toAPIImage)
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) {
	im, err := s.images.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIImage(im))
}

func (s *Server) deleteImage(w http.ResponseWriter, r *http.Request) {
	if err := s.images.Delete(r.Context(), chi.URLParam(r, "name")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// importImage streams a multipart upload into the library: fields name, format and
// cmdline first, then the file parts disk, kernel and initrd. Each file goes straight to a
// staging file with its checksum computed on the way; nothing is buffered in memory, and
// any failure removes every staged file.
func (s *Server) importImage(w http.ResponseWriter, r *http.Request) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" {
		writeError(w, r, errorf(http.StatusBadRequest, CodeBadRequest, "want a multipart/form-data upload (fields name, format, cmdline; files disk, kernel, initrd)"))
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, r, errorf(http.StatusBadRequest, CodeBadRequest, "multipart: %v", err))
		return
	}
	ctx := r.Context()
	req := storage.ImportRequest{}
	defer func() { req.Disk.Discard(); req.Kernel.Discard(); req.Initrd.Discard() }()
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, r, errorf(http.StatusBadRequest, CodeBadRequest, "multipart: %v", err))
			return
		}
		field := part.FormName()
		if seen[field] {
			writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "field %q given twice", field))
			return
		}
		seen[field] = true
		switch field {
		case "name", "format", "cmdline":
			b, err := io.ReadAll(io.LimitReader(part, 4097))
			if err != nil {
				writeError(w, r, errorf(http.StatusBadRequest, CodeBadRequest, "multipart: %v", err))
				return
			}
			if len(b) > 4096 {
				writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "field %q over 4096 bytes", field))
				return
			}
			switch field {
			case "name":
				req.Name = string(b)
				if !vmm.ValidName(req.Name) {
					writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "name %q: must match ^[a-z0-9][a-z0-9-]{0,62}$", req.Name))
					return
				}
				// Refuse a taken name before streaming gigabytes.
				if _, err := s.images.Get(ctx, req.Name); err == nil {
					writeError(w, r, errorf(http.StatusConflict, CodeConflict, "image %q already exists", req.Name))
					return
				}
			case "format":
				req.Format = string(b)
			case "cmdline":
				req.Cmdline = string(b)
			}
		case "disk", "kernel", "initrd":
			if req.Name == "" {
				writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "the name field must come before the file parts"))
				return
			}
			limit := int64(maxBootBytes)
			if field == "disk" {
				limit = maxImageBytes
			}
			st, err := s.images.Stage(ctx, part, limit)
			if err != nil {
				writeError(w, r, err)
				return
			}
			switch field {
			case "disk":
				req.Disk = st
			case "kernel":
				req.Kernel = st
			case "initrd":
				req.Initrd = st
			}
		default:
			writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "unknown field %q (want name, format, cmdline, disk, kernel, initrd)", field))
			return
		}
	}
	if req.Name == "" {
		writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "name is required"))
		return
	}
	if req.Disk == nil {
		if req.Kernel == nil {
			writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "an image needs a disk, a kernel, or both"))
			return
		}
		// A kernel-only image still gives every VM a root disk: an empty one.
		if req.Disk, err = s.images.StageBlank(ctx, storage.BlankDiskSize); err != nil {
			writeError(w, r, err)
			return
		}
		if req.Format == "" {
			req.Format = "qcow2"
		}
	}
	im, err := s.images.Commit(ctx, req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/images/"+im.Name)
	writeJSON(w, http.StatusCreated, toAPIImage(im))
}
