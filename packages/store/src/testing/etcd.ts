// Test code imports the etcd it starts from here (the same processes `npm start -- --store etcd` runs).
export * from "../etcd-server.ts";
