// A handful of 16×16 stroke icons; decorative (aria-hidden): buttons carry the label.
const PATHS: Record<string, string> = {
  start: "M5 3.5v9l7-4.5z",
  stop: "M4 4h8v8H4z",
  shutdown: "M8 2v6M4.5 4.5a5 5 0 1 0 7 0",
  reboot: "M13 8a5 5 0 1 1-1.5-3.5M13 2.5v3h-3",
  reset: "M3 8a5 5 0 1 0 1.5-3.5M3 2.5v3h3",
  pause: "M5 3.5v9M11 3.5v9",
  resume: "M5 3.5v9l7-4.5z",
  delete: "M3 4.5h10M6.5 4.5V3h3v1.5M4.5 4.5l.7 8.5h5.6l.7-8.5",
  console: "M2.5 3.5h11v9h-11zM4.5 6.5l2 1.5-2 1.5M8 10h3",
  plus: "M8 3v10M3 8h10",
  dashboard: "M2.5 2.5h4.5v6h-4.5zM9 2.5h4.5v3.5H9zM9 8h4.5v5.5H9zM2.5 10.5h4.5v3H2.5z",
  vms: "M2 3h12v8H2zM5.5 14h5M8 11v3",
  images: "M3 2.5h10v11H3zM5.5 5.5h5M5.5 8h5M5.5 10.5h3",
  networks: "M8 2.5v4M3.5 13.5v-3h9v3M8 6.5v4M6 1.5h4v3H6zM1.5 13.5h4v2h-4zM10.5 13.5h4v2h-4z",
  shield: "M8 1.8l5 2v4c0 3-2.2 5.3-5 6.4-2.8-1.1-5-3.4-5-6.4v-4z",
  volumes: "M3 4c0-1.1 2.2-2 5-2s5 .9 5 2v8c0 1.1-2.2 2-5 2s-5-.9-5-2zM3 4c0 1.1 2.2 2 5 2s5-.9 5-2M3 8c0 1.1 2.2 2 5 2s5-.9 5-2",
  logout: "M6 2.5H3v11h3M10 5l3 3-3 3M13 8H6",
  fullscreen: "M2.5 6V2.5H6M10 2.5h3.5V6M13.5 10v3.5H10M6 13.5H2.5V10",
  keyboard: "M1.5 4h13v8h-13zM4 6.5h1M7 6.5h1M10 6.5h1M4.5 9.5h7",
  clipboard: "M5 3H3.5v11h9V3H11M5.5 2h5v2.5h-5z",
  snapshot: "M2 5h3l1-1.5h4L11 5h3v8H2zM8 11a2.2 2.2 0 1 0 0-4.4A2.2 2.2 0 0 0 8 11z",
  revert: "M4 6h6a3.5 3.5 0 0 1 0 7H6M6.5 3.5L4 6l2.5 2.5",
  search: "M7 12a5 5 0 1 0 0-10 5 5 0 0 0 0 10zM10.5 10.5L14 14",
  upload: "M8 11V2.5M4.5 6L8 2.5 11.5 6M2.5 11v2.5h11V11",
  close: "M4 4l8 8M12 4l-8 8",
};

export type IconName = keyof typeof PATHS;

export function Icon({ name, size = 16 }: { name: IconName | string; size?: number }) {
  return (
    <svg className="icon" width={size} height={size} viewBox="0 0 16 16" aria-hidden="true" focusable="false">
      <path d={PATHS[name] ?? ""} fill={name === "start" || name === "resume" ? "currentColor" : "none"} stroke="currentColor" strokeWidth="1.4" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}
