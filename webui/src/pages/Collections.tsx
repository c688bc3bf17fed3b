// Networks, security groups and volumes: their APIs are being added to lqd. Until a host
// serves them, the page says so; once it does, their objects are listed as they come.
import { useOptionalCollection } from "../lib/queries";
import { ErrorBox, GenericTable, Loading, NotAvailable, PageHeader } from "../components/ui";

export function CollectionPage({ collection, title }: { collection: "networks" | "security-groups" | "volumes"; title: string }) {
  const q = useOptionalCollection(collection);
  return (
    <>
      <PageHeader title={title} />
      {q.isPending && <Loading what={`Loading ${title.toLowerCase()}`} />}
      {q.available === false && <NotAvailable what={title} />}
      {q.error && q.available !== false && <ErrorBox error={q.error} title={`Cannot list ${title.toLowerCase()}`} />}
      {q.data && q.data.length === 0 && <p className="muted">None yet.</p>}
      {q.data && q.data.length > 0 && <GenericTable rows={q.data} label={title} />}
    </>
  );
}
