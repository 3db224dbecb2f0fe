using System.CommandLine;
using System.Globalization;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>
/// <c>mlnet-align embed</c>: encode a pairs file (CSV/TSV) into an on-disk embedding store with a frozen image encoder
/// and a frozen text encoder; resumable, partitionable (<c>--shard i/N</c>), and <c>embed merge</c> to combine the
/// partition stores.
/// </summary>
public sealed class EmbedCommand : ICliCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var pairs = new Option<FileInfo>("--pairs") { Description = "Pairs file (.csv/.tsv, header row; image paths relative to the file).", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Store folder (created; a partial store of the same request is resumed; a store of another request is refused).", Required = true };
        var imageColumn = new Option<string>("--image-column") { Description = "Image path column.", DefaultValueFactory = _ => "image" };
        var captionColumn = new Option<string>("--caption-column") { Description = "Caption column; 'none' for an image-only (labelled) set.", DefaultValueFactory = _ => "caption" };
        var encoders = new EncoderCliOptions();
        var tokens = new Option<bool>("--tokens") { Description = "Also store image and text tokens (for token-level projectors)." };
        var dtype = new Option<string>("--dtype") { Description = "fp16 | fp32.", DefaultValueFactory = _ => "fp16" };
        var shardSize = new Option<int>("--shard-size") { Description = "Rows per shard file (unit of resume and streaming memory).", DefaultValueFactory = _ => 4096 };
        var batchSize = new Option<int>("--batch-size") { Description = "Items per encoder call.", DefaultValueFactory = _ => 32 };
        var partition = new Option<string?>("--shard") { Description = "Encode only partition i/N of the input (by image key hash), e.g. for a Kubernetes Indexed Job or Slurm array; combine with 'embed merge'." };
        var strict = new Option<bool>("--strict") { Description = "Fail on the first bad item (missing/corrupt image, empty caption) instead of skipping it." };

        var cmd = new Command("embed", "Encode image-caption pairs into a sharded, resumable embedding store (pooled, optionally token-level; fp16/fp32).");
        foreach (var o in new Option[] { pairs, output, imageColumn, captionColumn })
            cmd.Options.Add(o);
        encoders.AddTo(cmd);
        foreach (var o in new Option[] { tokens, dtype, shardSize, batchSize, partition, strict })
            cmd.Options.Add(o);
        // The work runs on its own task: System.CommandLine's SIGINT handling waits for a started action to observe the
        // token (a synchronous body would be killed at once with exit 130 and no word on how to resume).
        cmd.SetAction((parse, ct) =>
        {
            var args = new EmbedArgs
            {
                Pairs = parse.GetValue(pairs)!.FullName,
                Output = parse.GetValue(output)!.FullName,
                ImageColumn = parse.GetValue(imageColumn)!,
                CaptionColumn = parse.GetValue(captionColumn)!,
                Encoders = encoders.Read(parse),
                Tokens = parse.GetValue(tokens),
                DType = parse.GetValue(dtype)!,
                ShardSize = parse.GetValue(shardSize),
                BatchSize = parse.GetValue(batchSize),
                Partition = parse.GetValue(partition),
                Strict = parse.GetValue(strict),
            };
            return Task.Run(() => Run(args, ct), CancellationToken.None);
        });

        var mergeOut = new Option<DirectoryInfo>("--out") { Description = "Merged store folder.", Required = true };
        var parts = new Argument<DirectoryInfo[]>("partitions") { Description = "The partition store folders (all of 0/N .. N-1/N).", Arity = ArgumentArity.OneOrMore };
        var merge = new Command("merge", "Combine the stores written with --shard 0/N .. N-1/N into one store.");
        merge.Options.Add(mergeOut);
        merge.Arguments.Add(parts);
        merge.SetAction((parse, ct) => Task.Run(() => Merge(parse.GetValue(parts)!.Select(d => d.FullName).ToList(), parse.GetValue(mergeOut)!.FullName, ct), CancellationToken.None));
        cmd.Subcommands.Add(merge);
        return cmd;
    }

    /// <summary>Parsed arguments of <c>embed</c>.</summary>
    public sealed class EmbedArgs
    {
        public string Pairs { get; set; } = "";
        public string Output { get; set; } = "";
        public string ImageColumn { get; set; } = "image";
        public string CaptionColumn { get; set; } = "caption";
        /// <summary>Encoder flags (see <see cref="EncoderCliOptions"/>).</summary>
        public EncoderArgs Encoders { get; set; } = new();
        public bool Tokens { get; set; }
        public string DType { get; set; } = "fp16";
        public int ShardSize { get; set; } = 4096;
        public int BatchSize { get; set; } = 32;
        public string? Partition { get; set; }
        public bool Strict { get; set; }
    }

    /// <summary>Runs <c>embed</c>; returns the process exit code (0 ok, 1 bad input, 2 cancelled).</summary>
    public static int Run(EmbedArgs a, CancellationToken cancellationToken = default)
    {
        try
        {
            bool imageOnly = a.CaptionColumn.Equals("none", StringComparison.OrdinalIgnoreCase);
            var pairs = PairsFile.Read(a.Pairs, new PairsFileOptions { ImageColumn = a.ImageColumn, CaptionColumn = imageOnly ? null : a.CaptionColumn });
            var options = new EmbeddingPipelineOptions
            {
                ShardSize = a.ShardSize, BatchSize = a.BatchSize, ImageTokens = a.Tokens, TextTokens = a.Tokens && !imageOnly,
                DType = a.DType.ToLowerInvariant() switch
                {
                    "fp16" or "float16" or "half" => EmbeddingDType.Float16,
                    "fp32" or "float32" or "float" => EmbeddingDType.Float32,
                    _ => throw new ArgumentException($"--dtype must be fp16 or fp32, got '{a.DType}'."),
                },
                Partition = a.Partition == null ? null : ShardPartition.Parse(a.Partition),
                Strict = a.Strict,
            };
            Console.WriteLine($"Pairs: {pairs.Path} ({pairs.Rows.Count} rows, {pairs.Images.Count} distinct images, columns: {string.Join(", ", pairs.Header)})");
            using var outLock = CliLocks.Folder(a.Output); // one writer per store
            using var image = a.Encoders.CreateImageEncoder(a.BatchSize);
            using var text = imageOnly ? null : a.Encoders.CreateTextEncoder(a.BatchSize);
            Console.WriteLine($"Encoders: image {image.Identity.Name} ({image.Identity.Dimension}-d, sha256 {image.Identity.Sha256[..12]})" +
                              (text != null ? $", text {text.Identity.Name} ({text.Identity.Dimension}-d, sha256 {text.Identity.Sha256[..12]})" : ", no text (image-only)"));
            long total = EmbeddingPipeline.PlannedWork(pairs, options);
            var result = CliProgress.Run("Encoding", total, p =>
                EmbeddingPipeline.Run(pairs, a.Output, image, text, options, new EmbeddingProgressAdapter(p), cancellationToken));
            PrintSummary(result);
            return 0;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"Cancelled. Completed shards are kept in {a.Output}; run the same command again to resume.");
            return 2;
        }
        catch (Exception e) when (CliErrors.IsUserError(e) || e is EmbeddingStoreMismatchException)
        {
            Console.Error.WriteLine($"error: {CliErrors.MessageOf(e)}");
            return 1;
        }
    }

    /// <summary>Runs <c>embed merge</c>.</summary>
    public static int Merge(IReadOnlyList<string> partitions, string output, CancellationToken cancellationToken = default)
    {
        try
        {
            using var outLock = CliLocks.Folder(output); // one writer per store
            var store = EmbeddingStore.Merge(partitions, output, cancellationToken);
            Console.WriteLine($"Merged {partitions.Count} partition stores into {store.Directory}: {store.Rows} rows, {store.Shards.Count} shards, " +
                              $"{store.Manifest.SkippedCount} skipped, {FormatBytes(store.SizeInBytes)}, key {store.Key.ShortHash}.");
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or DirectoryNotFoundException or EmbeddingStoreMismatchException or InvalidOperationException or IOException)
        {
            Console.Error.WriteLine($"error: {CliErrors.MessageOf(e)}");
            return 1;
        }
    }

    private static void PrintSummary(EmbeddingRunResult r)
    {
        var s = r.Store;
        var m = s.Manifest;
        Console.WriteLine($"Store: {s.Directory} (key {s.Key.ShortHash}, {m.DType.ToString().Replace("Float", "fp")}{(m.Contents.ImageTokens ? ", image tokens" : "")}{(m.Contents.TextTokens ? ", text tokens" : "")})");
        Console.WriteLine($"Rows: {s.Rows} stored of {m.Input.InputRows} input rows, {m.Images} distinct images, {m.Shards.Count} shards ({r.ShardsEncoded} encoded now, {r.ShardsReused} reused)");
        Console.WriteLine($"Skipped: {m.SkippedCount}");
        foreach (var g in m.Shards.SelectMany(x => x.Skipped).GroupBy(x => Reason(x.Reason)).OrderByDescending(g => g.Count()))
            Console.WriteLine($"  {g.Count(),6} x {g.Key} (e.g. line {g.First().Line}: {g.First().Image})");
        // Encoder seconds are summed over batches that overlap, so the rate users get is the end-to-end one.
        if (r.ImagesEncoded > 0) Console.WriteLine($"Images: {r.ImagesEncoded} encoded, up to {r.Concurrency} batches at once (encoder calls {r.ImageSeconds:F1} s summed over batches)");
        if (r.TextsEncoded > 0) Console.WriteLine($"Sentences: {r.TextsEncoded} encoded (encoder calls {r.TextSeconds:F1} s summed over batches)");
        Console.WriteLine($"Output: {FormatBytes(s.SizeInBytes)} in {r.Elapsed.TotalSeconds:F1} s" +
                          (r.ImagesEncoded > 0 ? $" = {r.ImagesEncoded / Math.Max(r.Elapsed.TotalSeconds, 1e-9):F1} images/s end to end" : ""));
    }

    /// <summary>Groups reasons without their item-specific tail (the path or decoder message).</summary>
    private static string Reason(string reason) => reason.Split(':')[0];

    private static string FormatBytes(long b) => b switch
    {
        < 1024 => $"{b} B",
        < 1 << 20 => $"{b / 1024.0:F1} KiB",
        < 1 << 30 => $"{b / 1048576.0:F1} MiB",
        _ => $"{b / 1073741824.0:F2} GiB",
    };
}
