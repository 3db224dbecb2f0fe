using System.CommandLine;
using MLNet.Align.Embeddings;
using MLNet.Align.Search;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>
/// <c>mlnet-align index --model DIR --images DIR --index DIR</c>: index a photo folder (recursive) for search with an
/// aligned model, incrementally (new and changed files encoded, moved files kept, deleted files removed, bad files
/// reported and skipped); <c>--shard i/N</c> indexes one partition, <c>index merge</c> combines the shard indexes;
/// <c>--reproject</c> adopts a new projector over the same image encoder without re-encoding.
/// </summary>
public sealed class IndexCommand : ICliCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var model = new Option<string>("--model") { Description = "Aligned-model bundle directory (from 'train').", Required = true };
        var images = new Option<string[]>("--images") { Description = "Image folder(s) to index (recursive; png, jpg, jpeg, bmp, gif, webp). Items under a folder whose file is gone are removed.", Required = true, AllowMultipleArgumentsPerToken = true };
        var index = new Option<string>("--index") { Description = "Index folder (created; an existing index is updated).", Required = true };
        var shard = new Option<string?>("--shard") { Description = "Index only partition i/N of the files (by path hash), e.g. one Slurm array task or Kubernetes Indexed Job each; combine with 'index merge'." };
        var reproject = new Option<bool>("--reproject") { Description = "The index was built with another projector over the same image encoder: re-project the stored encoder embeddings with this model (no image is re-encoded)." };
        var quant = new Option<string>("--quantization") { Description = "HNSW storage: fp16 | fp32 | int8.", DefaultValueFactory = _ => "fp16" };
        var exactBelow = new Option<int>("--exact-below") { Description = "Keep no HNSW graph below this many images (queries scan them all exactly).", DefaultValueFactory = _ => new ImageIndexOptions().ExactBelow };
        var batch = new Option<int>("--batch-size") { Description = "Images per encoder call.", DefaultValueFactory = _ => 32 };
        var dryRun = new Option<bool>("--dry-run") { Description = "Say what an update would do (new / changed / moved / deleted) and write nothing." };
        var backend = BackendOption();
        var connection = ConnectionOption();
        var cmd = new Command("index", "Index a photo folder for search with an aligned model (incremental; resumable after Ctrl+C or kill).")
            { model, images, index, shard, reproject, quant, exactBelow, batch, dryRun, backend, connection };
        cmd.SetAction((parse, ct) => Task.Run(() => CliErrors.Run(() =>
        {
            var options = Options(parse.GetValue(quant)!, parse.GetValue(exactBelow), parse.GetValue(batch));
            var partition = parse.GetValue(shard) is { } s ? ShardPartition.Parse(s) : null;
            // Every folder is checked before the index is opened, so a wrong one leaves no new index folder behind.
            var sources = parse.GetValue(images)!.Select(folder =>
            {
                var source = IndexSource.FromFolder(folder);
                return (folder, partition is null ? source : source.Shard(partition.Index, partition.Count));
            }).ToList();
            using var idx = OpenIndex(parse.GetValue(index)!, parse.GetValue(model)!, options, parse.GetValue(reproject));
            int total = 0;
            foreach (var (folder, source) in sources)
            {
                var plan = idx.Plan(source, ct);
                if (parse.GetValue(dryRun))
                {
                    Console.WriteLine($"{folder}: would add or replace {plan.ToEncode:N0}, move {plan.Moved:N0}, delete {plan.Deleted:N0}; {plan.Unchanged:N0} unchanged, {plan.Skipped.Count:N0} unreadable");
                    continue;
                }
                var result = CliProgress.Run($"Indexing {folder}", plan.ToEncode,
                    p => idx.Update(plan, new Progress<IndexProgress>(x => p.Report(x.Done)), ct), unit: "images");
                PrintSkipped(result.Skipped);
                Console.WriteLine($"{folder}: {result} in {result.Elapsed.TotalSeconds:F1} s");
                total = (int)result.Total;
            }
            if (parse.GetValue(dryRun)) return 0;
            Console.WriteLine($"Index {idx.Directory}: {total:N0} images, model '{idx.Model.Name}' (fingerprint {idx.ModelFingerprint[..12]})");
            if (Postgres(parse.GetValue(backend)!, parse.GetValue(connection), idx.Dimension) is { } store)
                using (store)
                {
                    long written = store.Sync(idx);
                    Console.WriteLine($"PostgreSQL table {store.Table} (pgvector {store.VectorVersion}): {written:N0} rows written or deleted, {store.Count():N0} images, in step with generation {idx.Generation}");
                }
            return 0;
        })));
        cmd.Subcommands.Add(Merge());
        return cmd;
    }

    private static Command Merge()
    {
        var model = new Option<string>("--model") { Description = "The aligned-model bundle the shards were built with.", Required = true };
        var into = new Option<string>("--index") { Description = "Index folder to merge into (created if absent).", Required = true };
        var shards = new Argument<string[]>("shards") { Description = "Shard index folders (from 'index --shard i/N').", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("merge", "Merge shard indexes into one index (vectors copied, nothing re-encoded).") { model, into, shards };
        cmd.SetAction((parse, ct) => Task.Run(() => CliErrors.Run(() =>
        {
            using var idx = OpenIndex(parse.GetValue(into)!, parse.GetValue(model)!, new ImageIndexOptions(), false);
            long n = idx.Merge(parse.GetValue(shards)!);
            Console.WriteLine($"Merged {n:N0} items from {parse.GetValue(shards)!.Length} shards into {idx.Directory}: {idx.Count:N0} images.");
            return 0;
        })));
        return cmd;
    }

    internal static Option<string> BackendOption() => new("--backend") { Description = "Where queries run: embedded (the index folder's HNSW/exact search) or postgres (a PostgreSQL + pgvector table kept in step with the index; docs/search.md).", DefaultValueFactory = _ => "embedded" };
    internal static Option<string?> ConnectionOption() => new("--connection") { Description = "PostgreSQL connection string for --backend postgres (default: $MLNET_ALIGN_PG)." };

    /// <summary>The PostgreSQL store for --backend postgres, or null for the embedded backend.</summary>
    internal static Search.Postgres.PostgresVectorStore? Postgres(string backend, string? connection, int dimension)
    {
        switch (backend.ToLowerInvariant())
        {
            case "embedded": return null;
            case "postgres":
                connection ??= Environment.GetEnvironmentVariable("MLNET_ALIGN_PG");
                if (string.IsNullOrWhiteSpace(connection)) throw new ArgumentException("--backend postgres needs --connection \"Host=...;Database=...;Username=...\" (or $MLNET_ALIGN_PG).");
                return Search.Postgres.PostgresVectorStore.Open(connection, dimension);
            default: throw new ArgumentException($"--backend must be embedded or postgres, not '{backend}'.");
        }
    }

    internal static ImageIndexOptions Options(string quantization, int exactBelow, int batchSize) => new()
    {
        Quantization = quantization.ToLowerInvariant() switch
        {
            "fp16" => VectorQuantization.Float16,
            "fp32" => VectorQuantization.Float32,
            "int8" => VectorQuantization.Int8,
            _ => throw new ArgumentException($"--quantization must be fp16, fp32 or int8, not '{quantization}'."),
        },
        ExactBelow = exactBelow,
        BatchSize = batchSize,
    };

    internal static ImageIndex OpenIndex(string index, string model, ImageIndexOptions options, bool reproject)
    {
        if (!Directory.Exists(model)) throw new DirectoryNotFoundException($"Model folder not found: {model}");
        return ImageIndex.Open(index, model, options, reproject);
    }

    private static void PrintSkipped(IReadOnlyList<(string Path, string Reason)> skipped)
    {
        foreach (var (path, reason) in skipped.Take(20)) Console.Error.WriteLine($"skipped {path}: {reason}");
        if (skipped.Count > 20) Console.Error.WriteLine($"... and {skipped.Count - 20:N0} more skipped");
    }
}
