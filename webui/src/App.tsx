import { lazy, Suspense, useSyncExternalStore, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { getToken, onAuthChange, setToken } from "./lib/api";
import { useEventFeed, useEvents } from "./lib/live";
import { useHost } from "./lib/queries";
import { Link, match, useLocation } from "./lib/router";
import { Icon } from "./components/Icon";
import { Loading } from "./components/ui";
import { Login } from "./pages/Login";
import { Dashboard } from "./pages/Dashboard";
import { VMList } from "./pages/VMList";
import { VMDetail } from "./pages/VMDetail";
import { Images } from "./pages/Images";
import { CollectionPage } from "./pages/Collections";

// The wizard pulls in the YAML parser: load it on demand.
const CreateVM = lazy(() => import("./pages/CreateVM"));

export function useToken(): string | null {
  return useSyncExternalStore(onAuthChange, getToken);
}

const NAV = [
  { to: "/", label: "Dashboard", icon: "dashboard", match: (p: string) => p === "/" },
  { to: "/vms", label: "Virtual machines", icon: "vms", match: (p: string) => p.startsWith("/vms") },
  { to: "/images", label: "Images", icon: "images", match: (p: string) => p.startsWith("/images") },
  { to: "/networks", label: "Networks", icon: "networks", match: (p: string) => p.startsWith("/networks") },
  { to: "/security-groups", label: "Security groups", icon: "shield", match: (p: string) => p.startsWith("/security-groups") },
  { to: "/volumes", label: "Volumes", icon: "volumes", match: (p: string) => p.startsWith("/volumes") },
];

export function App() {
  const token = useToken();
  const qc = useQueryClient();
  useEventFeed(qc, token);
  if (!token) return <Login />;
  return (
    <Shell>
      <Routes />
    </Shell>
  );
}

function Routes() {
  const { path } = useLocation();
  let m: Record<string, string> | null;
  if (path === "/") return <Dashboard />;
  if (path === "/vms" || path === "/vms/") return <VMList />;
  if (path === "/vms/new")
    return (
      <Suspense fallback={<Loading what="Loading the wizard" />}>
        <CreateVM />
      </Suspense>
    );
  if ((m = match("/vms/:name/:tab?", path))) return <VMDetail key={m.name} name={m.name} tab={m.tab ?? "summary"} />;
  if (path === "/images") return <Images />;
  if (path === "/networks") return <CollectionPage collection="networks" title="Networks" />;
  if (path === "/security-groups") return <CollectionPage collection="security-groups" title="Security groups" />;
  if (path === "/volumes") return <CollectionPage collection="volumes" title="Volumes" />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        Nothing lives at <code>{path}</code>. <Link to="/">Go to the dashboard</Link>.
      </p>
    </section>
  );
}

const MODE_TEXT = { live: "Live", polling: "Live (polling)", connecting: "Connecting", offline: "Offline" } as const;

function Shell({ children }: { children: ReactNode }) {
  const { path } = useLocation();
  const host = useHost();
  const { mode } = useEvents();
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand" aria-label="limiquantix home">
          <span className="logo" aria-hidden="true">
            lq
          </span>
          limiquantix
        </Link>
        <span className="host-name" title="Host">
          {host.data ? (
            <>
              {host.data.name} <span className="muted">· lqd {host.data.version} · qemu {host.data.qemu_version} · {host.data.accel.toUpperCase()}</span>
            </>
          ) : (
            "…"
          )}
        </span>
        <span className={`conn conn-${mode}`} role="status" aria-label={`Event stream: ${MODE_TEXT[mode]}`} title="Event stream">
          <span className="dot" aria-hidden="true" />
          {MODE_TEXT[mode]}
        </span>
        <button type="button" className="btn ghost" onClick={() => setToken(null)}>
          <Icon name="logout" />
          Sign out
        </button>
      </header>
      <nav className="sidebar" aria-label="Main">
        <ul>
          {NAV.map((n) => (
            <li key={n.to}>
              <Link to={n.to} aria-current={n.match(path) ? "page" : undefined} className={n.match(path) ? "active" : undefined}>
                <Icon name={n.icon} />
                {n.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" className="content" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
