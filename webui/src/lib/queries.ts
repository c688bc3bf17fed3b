// TanStack Query hooks over the API. Keys: ['host'], ['vms'], ['vm', name], ['images'],
// ['snapshots', name], ['stats', name], ['networks'], ['security-groups'], ['volumes'].
import { useQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { api, isNotFound, type PowerAction } from "./api";
import { StatsHistory, series, type Rates } from "./stats";
import type { VMStats } from "./types";

export const useHost = () => useQuery({ queryKey: ["host"], queryFn: ({ signal }) => api.host(signal), refetchInterval: 30_000 });

export const useVMs = () => useQuery({ queryKey: ["vms"], queryFn: ({ signal }) => api.vms(signal) });

export const useVM = (name: string) =>
  useQuery({
    queryKey: ["vm", name],
    queryFn: ({ signal }) => api.vm(name, signal),
    // Guest-agent facts change without events; refresh them now and then.
    refetchInterval: (q) => (isNotFound(q.state.error) ? false : 15_000),
    retry: (n, err) => !isNotFound(err) && n < 2,
  });

export const useImages = () => useQuery({ queryKey: ["images"], queryFn: ({ signal }) => api.images(signal) });

/**
 * A collection that not every lqd has yet (networks, security groups, volumes): available
 * is false when its GET answers 404.
 */
export function useOptionalCollection(collection: "networks" | "security-groups" | "volumes", enabled = true) {
  const q = useQuery({
    queryKey: [collection],
    queryFn: ({ signal }) => api.list(collection, signal),
    enabled,
    retry: (n, err) => !isNotFound(err) && n < 2,
    staleTime: 10_000,
  });
  const available = q.isSuccess ? true : isNotFound(q.error) ? false : undefined;
  return { ...q, available };
}

export function useSnapshots(name: string, enabled = true) {
  const q = useQuery({
    queryKey: ["snapshots", name],
    queryFn: ({ signal }) => api.snapshots(name, signal),
    retry: (n, err) => !isNotFound(err) && n < 2,
    enabled,
  });
  const available = q.isSuccess ? true : isNotFound(q.error) ? false : undefined;
  return { ...q, available };
}

const history = new StatsHistory();

export interface StatsView {
  /** false when this lqd has no stats endpoint (404). */
  available: boolean | undefined;
  samples: VMStats[];
  series: Rates[];
  latest: Rates | undefined;
}

/** Polls a running VM's counters and derives rates; the list and the detail share it. */
export function useStats(name: string, vcpus: number, running: boolean, intervalMs = 2000): StatsView {
  const q = useQuery({
    queryKey: ["stats", name],
    queryFn: async ({ signal }) => history.add(name, await api.stats(name, signal)),
    enabled: running,
    retry: false,
    refetchInterval: (q) => (isNotFound(q.state.error) ? false : intervalMs),
    refetchIntervalInBackground: false,
    staleTime: 1000,
  });
  const samples = running ? (q.data ?? history.get(name)) : [];
  const s = series(samples, vcpus);
  return {
    available: q.isSuccess || samples.length > 0 ? true : isNotFound(q.error) ? false : undefined,
    samples,
    series: s,
    latest: s[s.length - 1],
  };
}

export function usePowerAction() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ name, action }: { name: string; action: PowerAction }) => api.action(name, action),
    onSuccess: (vm) => {
      qc.setQueryData(["vm", vm.name], vm);
    },
    onSettled: (_d, _e, v) => {
      void qc.invalidateQueries({ queryKey: ["vms"] });
      void qc.invalidateQueries({ queryKey: ["vm", v.name] });
      void qc.invalidateQueries({ queryKey: ["host"] });
    },
  });
}

export function useDeleteVM() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ name, force }: { name: string; force: boolean }) => api.deleteVM(name, force),
    onSuccess: (_d, v) => {
      qc.setQueryData(["vms"], (old: { name: string }[] | undefined) => old?.filter((x) => x.name !== v.name));
      qc.removeQueries({ queryKey: ["vm", v.name] });
      void qc.invalidateQueries({ queryKey: ["vms"] });
      void qc.invalidateQueries({ queryKey: ["host"] });
    },
  });
}
