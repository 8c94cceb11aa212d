-- Aliases: a name a client may use as `model`, trying its targets (`platform/model` or model ids) in order.
CREATE TABLE aliases (
    name TEXT PRIMARY KEY NOT NULL,
    position INTEGER NOT NULL,
    targets TEXT NOT NULL
);
