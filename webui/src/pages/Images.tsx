import { useRef, useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, uploadImage } from "../lib/api";
import { bytes, dateTime } from "../lib/format";
import { useImages, useVMs } from "../lib/queries";
import { validateName } from "../lib/names";
import type { Image } from "../lib/types";
import { Icon } from "../components/Icon";
import { ErrorBox, Loading, Modal, PageHeader, errorText } from "../components/ui";

export function Images() {
  const images = useImages();
  const vms = useVMs();
  const [uploading, setUploading] = useState(false);
  const [deleting, setDeleting] = useState<Image | null>(null);
  const users = (name: string) => (vms.data ?? []).filter((v) => v.image === name).length;
  return (
    <>
      <PageHeader title="Images" sub="Read-only base disks that VMs' root disks are overlays on.">
        <button type="button" className="btn primary solid" onClick={() => setUploading(true)}>
          <Icon name="upload" />
          Upload image
        </button>
      </PageHeader>
      {images.isPending && <Loading what="Loading images" />}
      <ErrorBox error={images.error} title="Cannot list images" />
      {images.data && images.data.length === 0 && (
        <div className="empty">
          <p>No images. Upload a qcow2 or raw disk, or a kernel and initrd for direct kernel boot.</p>
        </div>
      )}
      {images.data && images.data.length > 0 && (
        <table className="table" aria-label="Images">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Format</th>
              <th scope="col" className="num">
                Virtual size
              </th>
              <th scope="col" className="num">
                File size
              </th>
              <th scope="col">Boot</th>
              <th scope="col">VMs</th>
              <th scope="col">Created</th>
              <th scope="col">SHA-256</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {images.data.map((i) => (
              <tr key={i.name} data-image={i.name}>
                <th scope="row">{i.name}</th>
                <td>{i.format}</td>
                <td className="num">{bytes(i.virtual_size)}</td>
                <td className="num">{bytes(i.size)}</td>
                <td className="small">
                  {i.kernel ? (
                    <>
                      kernel{i.initrd ? " + initrd" : ""}
                      {i.cmdline && <div className="mono muted">{i.cmdline}</div>}
                    </>
                  ) : (
                    "disk"
                  )}
                </td>
                <td>{users(i.name) || "—"}</td>
                <td className="nowrap">{dateTime(i.created_at)}</td>
                <td className="mono small" title={i.sha256}>
                  {i.sha256.slice(0, 12)}…
                </td>
                <td className="row-actions">
                  <button type="button" className="icon-btn danger" aria-label={`Delete image ${i.name}`} title="Delete" onClick={() => setDeleting(i)}>
                    <Icon name="delete" />
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {uploading && <UploadDialog onClose={() => setUploading(false)} />}
      {deleting && <DeleteImageDialog image={deleting} users={users(deleting.name)} onClose={() => setDeleting(null)} />}
    </>
  );
}

function DeleteImageDialog({ image, users, onClose }: { image: Image; users: number; onClose: () => void }) {
  const qc = useQueryClient();
  const del = useMutation({
    mutationFn: () => api.deleteImage(image.name),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ["images"] });
      void qc.invalidateQueries({ queryKey: ["host"] });
      onClose();
    },
  });
  return (
    <Modal
      title={`Delete image ${image.name}?`}
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn" data-close onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn danger solid" disabled={del.isPending} onClick={() => del.mutate()}>
            {del.isPending ? "Deleting…" : "Delete image"}
          </button>
        </>
      }
    >
      <p>The image's files are removed from the pool.</p>
      {users > 0 && (
        <p className="hint warn">
          {users} VM{users > 1 ? "s use" : " uses"} this image as a backing file; lqd refuses to delete it while they exist.
        </p>
      )}
      {del.error && (
        <div className="alert error" role="alert">
          {errorText(del.error)}
        </div>
      )}
    </Modal>
  );
}

function UploadDialog({ onClose }: { onClose: () => void }) {
  const qc = useQueryClient();
  const [name, setName] = useState("");
  const [format, setFormat] = useState("");
  const [cmdline, setCmdline] = useState("");
  const [disk, setDisk] = useState<File | null>(null);
  const [kernel, setKernel] = useState<File | null>(null);
  const [initrd, setInitrd] = useState<File | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [progress, setProgress] = useState<{ sent: number; total: number } | null>(null);
  const abort = useRef<(() => void) | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const n = validateName(name);
    if (n) return setError(`Name: ${n}`);
    if (!disk && !kernel) return setError("Choose a disk file, or a kernel (and initrd) for direct kernel boot.");
    if (initrd && !kernel) return setError("An initrd needs a kernel.");
    setError(null);
    const up = uploadImage({ name, format, cmdline }, { disk, kernel, initrd }, (sent, total) => setProgress({ sent, total }));
    abort.current = up.abort;
    setProgress({ sent: 0, total: (disk?.size ?? 0) + (kernel?.size ?? 0) + (initrd?.size ?? 0) });
    try {
      await up.promise;
      void qc.invalidateQueries({ queryKey: ["images"] });
      void qc.invalidateQueries({ queryKey: ["host"] });
      onClose();
    } catch (err) {
      setError(errorText(err));
      setProgress(null);
    } finally {
      abort.current = null;
    }
  };
  const busy = progress !== null;
  const close = () => {
    abort.current?.();
    onClose();
  };
  return (
    <Modal title="Upload image" onClose={close}>
      <form onSubmit={submit} className="form" aria-label="Upload image">
        <label className="field">
          <span>Name</span>
          <input value={name} onChange={(e) => setName(e.target.value)} autoComplete="off" spellCheck={false} required />
        </label>
        <label className="field">
          <span>Disk file (qcow2 or raw)</span>
          <input type="file" onChange={(e) => setDisk(e.target.files?.[0] ?? null)} />
        </label>
        <label className="field">
          <span>Format</span>
          <select value={format} onChange={(e) => setFormat(e.target.value)}>
            <option value="">detect</option>
            <option value="qcow2">qcow2</option>
            <option value="raw">raw</option>
          </select>
        </label>
        <fieldset className="sub-fieldset">
          <legend>Direct kernel boot (optional)</legend>
          <label className="field">
            <span>Kernel</span>
            <input type="file" onChange={(e) => setKernel(e.target.files?.[0] ?? null)} />
          </label>
          <label className="field">
            <span>Initrd</span>
            <input type="file" onChange={(e) => setInitrd(e.target.files?.[0] ?? null)} />
          </label>
          <label className="field">
            <span>Kernel command line</span>
            <input value={cmdline} onChange={(e) => setCmdline(e.target.value)} placeholder="console=ttyS0" spellCheck={false} />
          </label>
        </fieldset>
        {progress && (
          <div className="upload-progress">
            <progress value={progress.sent} max={progress.total || 1} aria-label="Upload progress" />
            <span className="small muted">
              {bytes(progress.sent)} of {bytes(progress.total)}
              {progress.total > 0 && progress.sent >= progress.total ? " · importing…" : ""}
            </span>
          </div>
        )}
        {error && (
          <div className="alert error" role="alert">
            {error}
          </div>
        )}
        <div className="modal-footer">
          <button type="button" className="btn" data-close onClick={close}>
            Cancel
          </button>
          <button type="submit" className="btn primary solid" disabled={busy}>
            {busy ? "Uploading…" : "Upload"}
          </button>
        </div>
      </form>
    </Modal>
  );
}
