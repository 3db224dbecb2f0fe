using System.CommandLine;
using MLNet.Align.Curation;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.ZeroShot;
using MLNet.Align.Prompts;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>
/// <c>mlnet-align curate</c>: stage 2. Scores every pair of an embedding store (the pool) against concept prototypes,
/// keeps a top-K per concept while streaming, assigns pairs rarest-concept-first with a per-concept cap and writes the
/// subset as a pairs file plus a report and a histogram. <c>--shard i/N</c> writes one partition's candidate lists;
/// <c>curate merge</c> combines them (byte-identical to a one-process run).
/// </summary>
public sealed class CurateCommand : ICliCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var pool = new Option<DirectoryInfo>("--pool") { Description = "Embedding store of the pool (written by 'embed').", Required = true };
        var concepts = new Option<string>("--concepts") { Description = "Concept list: a file (one name per line, 'name<TAB>gloss', or a TSV with a 'name' column) or 'imagenet-1k' (packaged, with WordNet glosses).", Required = true };
        var perConcept = new Option<int>("--per-concept") { Description = "K: candidates kept per concept while streaming (bounds memory).", DefaultValueFactory = _ => 500 };
        var cap = new Option<int>("--cap") { Description = "Most pairs assigned to one concept.", DefaultValueFactory = _ => 100 };
        var output = new Option<FileInfo>("--out") { Description = "Subset pairs file (.tsv); with --shard, the partition's candidates file.", Required = true };
        var side = new Option<string>("--side") { Description = "caption | image | both: what is scored against the prototypes.", DefaultValueFactory = _ => "caption" };
        var templates = new Option<string>("--templates") { Description = "Prompt templates for text prototypes: a built-in name (photo, icons, simple-imagenet, openai-imagenet) or a file.", DefaultValueFactory = _ => "photo" };
        var glosses = new Option<bool>("--glosses") { Description = "Add a 'name: gloss' prompt per concept when the list has glosses." };
        var examples = new Option<DirectoryInfo?>("--examples") { Description = "Example images for image prototypes: DIR/<concept name>/* (needed for --side image|both)." };
        var examplesPer = new Option<int>("--examples-per-concept") { Description = "Example images averaged per concept.", DefaultValueFactory = _ => 16 };
        var shard = new Option<string?>("--shard") { Description = "Score only partition i/N of the pool (by image key hash); combine with 'curate merge'." };
        var threads = new Option<int>("--threads") { Description = "Scoring threads (0 = all cores); results do not depend on it.", DefaultValueFactory = _ => 0 };
        var cmd = new Command("curate", "Stage 2: select a concept-balanced subset of a pool of pairs (prototypes -> per-concept top-K -> rarest first, capped).");
        foreach (var o in new Option[] { pool, concepts, perConcept, cap, output, side, templates, glosses, examples, examplesPer, shard, threads }) cmd.Options.Add(o);
        cmd.SetAction((p, ct) => Task.Run(() => CliErrors.Run(() => Run(new Args
        {
            Pool = p.GetValue(pool)!.FullName, Concepts = p.GetValue(concepts)!, PerConcept = p.GetValue(perConcept), Cap = p.GetValue(cap),
            Out = p.GetValue(output)!.FullName, Side = p.GetValue(side)!, Templates = p.GetValue(templates)!, Glosses = p.GetValue(glosses),
            Examples = p.GetValue(examples)?.FullName, ExamplesPerConcept = p.GetValue(examplesPer), Shard = p.GetValue(shard), Threads = p.GetValue(threads),
        }, ct))));

        var mergeOut = new Option<FileInfo>("--out") { Description = "Subset pairs file (.tsv).", Required = true };
        var mergeCap = new Option<int>("--cap") { Description = "Most pairs assigned to one concept.", DefaultValueFactory = _ => 100 };
        var mergePool = new Option<DirectoryInfo?>("--pool") { Description = "The pool store (default: the folder recorded in the parts)." };
        var parts = new Argument<FileInfo[]>("candidates") { Description = "The candidate files of all partitions (curate --shard 0/N .. N-1/N).", Arity = ArgumentArity.OneOrMore };
        var merge = new Command("merge", "Combine the candidate lists of curate --shard 0/N .. N-1/N and select (same bytes as a one-process run).");
        merge.Options.Add(mergeOut); merge.Options.Add(mergeCap); merge.Options.Add(mergePool); merge.Arguments.Add(parts);
        merge.SetAction((p, ct) => Task.Run(() => CliErrors.Run(() =>
        {
            var merged = ConceptCandidates.Merge(p.GetValue(parts)!.Select(f => ConceptCandidates.Load(f.FullName)).ToList());
            Console.WriteLine($"Merged {p.GetValue(parts)!.Length} partitions: {merged.Concepts.Count} concepts x top {merged.PerConcept}.");
            var store = EmbeddingStore.Open(p.GetValue(mergePool)?.FullName ?? merged.PoolDirectory);
            Finish(store, merged, p.GetValue(mergeCap), p.GetValue(mergeOut)!.FullName, ct);
            return 0;
        })));
        cmd.Subcommands.Add(merge);
        return cmd;
    }

    /// <summary>Parsed arguments of <c>curate</c>.</summary>
    public sealed class Args
    {
        public string Pool { get; set; } = "";
        public string Concepts { get; set; } = "";
        public int PerConcept { get; set; } = 500;
        public int Cap { get; set; } = 100;
        public string Out { get; set; } = "";
        public string Side { get; set; } = "caption";
        public string Templates { get; set; } = "photo";
        public bool Glosses { get; set; }
        public string? Examples { get; set; }
        public int ExamplesPerConcept { get; set; } = 16;
        public string? Shard { get; set; }
        public int Threads { get; set; }
    }

    /// <summary>Path of a concept list shipped beside the tool (<c>concepts/imagenet-1k.tsv</c>: names + WordNet glosses).</summary>
    public static string PackagedConceptList(string name) => Path.Combine(AppContext.BaseDirectory, "concepts", $"{name}.tsv");

    /// <summary>Runs <c>curate</c>.</summary>
    public static int Run(Args a, CancellationToken ct = default)
    {
        var side = a.Side.ToLowerInvariant() switch
        {
            "caption" or "text" => CurationSide.Caption,
            "image" => CurationSide.Image,
            "both" => CurationSide.Both,
            _ => throw new ArgumentException($"--side must be caption, image or both, got '{a.Side}'."),
        };
        if (a.Cap < 1) throw new ArgumentException($"--cap must be positive, got {a.Cap}.");
        var partition = a.Shard is null ? null : ShardPartition.Parse(a.Shard);
        var store = EmbeddingStore.Open(a.Pool);
        string conceptsPath = File.Exists(a.Concepts) ? a.Concepts : File.Exists(PackagedConceptList(a.Concepts)) ? PackagedConceptList(a.Concepts)
            : throw new FileNotFoundException($"--concepts: '{a.Concepts}' is neither a file nor a packaged list (imagenet-1k).", a.Concepts);
        var concepts = ConceptList.Read(conceptsPath);
        Console.WriteLine($"Pool: {store.Directory} ({store.Rows} pairs, {store.Manifest.Images} images, key {store.Key.ShortHash}){(partition is null ? "" : $", partition {partition}")}");
        Console.WriteLine($"Concepts: {concepts.Count} from {conceptsPath} ({concepts.Count(c => c.Gloss is not null)} with glosses); side {side}, K {a.PerConcept}, cap {a.Cap}");

        ConceptPrototypes? protos = null;
        if (side != CurationSide.Image)
        {
            using var text = OpenPackagedText(store.Manifest.TextEncoder);
            protos = ConceptPrototypes.FromText(concepts, PromptTemplates.LoadOrBuiltIn(a.Templates), text, a.Glosses, ct);
        }
        if (side != CurationSide.Caption)
        {
            if (a.Examples is null) throw new ArgumentException($"--side {a.Side} needs --examples DIR (DIR/<concept name>/* example images).");
            using var image = PackagedEncoders.OpenImageEncoder(store.Manifest.ImageEncoder);
            var img = ConceptPrototypes.FromImages(concepts, a.Examples, image, a.ExamplesPerConcept, ct);
            protos = protos is null ? img : protos.WithImages(img);
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var options = new CurationOptions { PerConcept = a.PerConcept, Cap = a.Cap, Side = side, Partition = partition, Threads = a.Threads };
        var candidates = CliProgress.Run("Scoring pool pairs", store.Rows, p => ConceptCurator.Score(store, protos!, options, p, ct), unit: "pairs");
        Console.WriteLine($"Scored {store.Rows} pairs x {concepts.Count} concepts in {clock.Elapsed.TotalSeconds:F1} s.");
        if (partition is not null)
        {
            using var partLock = CliLocks.ForFile(a.Out);
            candidates.Save(a.Out);
            Console.WriteLine($"Candidates of partition {partition} -> {a.Out}; combine all partitions with 'curate merge'.");
            return 0;
        }
        Finish(store, candidates, a.Cap, a.Out, ct);
        return 0;
    }

    /// <summary>Assigns the candidates and writes the subset, its report and histogram
    /// (<see cref="CurationReportWriter"/>), holding the output lock, and prints what it wrote.</summary>
    private static void Finish(EmbeddingStore store, ConceptCandidates candidates, int cap, string outPath, CancellationToken ct)
    {
        using var outLock = CliLocks.ForFile(outPath); // the subset, its report and histogram: one writer
        var (_, report, histogram) = CurationReportWriter.Write(store, candidates, cap, outPath, ct);
        PrintSummary(report, cap, outPath, histogram);
    }

    /// <summary>The lines <c>curate</c> prints after writing a subset.</summary>
    internal static void PrintSummary(CurationReport report, int cap, string outPath, string? histogram)
    {
        string stem = CurationReportWriter.Stem(outPath);
        Console.WriteLine($"Selected {report.Selected} pairs ({report.DistinctImages} images) for {report.Covered}/{report.Concepts} concepts (coverage {report.Coverage:P1}; {report.AtCap} at the cap of {cap}).");
        Console.WriteLine($"Subset: {Path.GetFullPath(outPath)}; report: {stem}.report.json");
        if (histogram is not null) Console.WriteLine($"Histogram: {histogram}");
    }

    /// <summary>The packaged text encoder whose identity the pool records (all-MiniLM-L6-v2 or snowflake-arctic-embed-xs).</summary>
    /// <exception cref="NotSupportedException">The pool's captions come from another encoder.</exception>
    public static ITextEncoder OpenPackagedText(EncoderIdentity? identity)
    {
        if (identity is null) throw new ArgumentException("The pool is image-only: caption-side curation needs captions.");
        foreach (var open in new Func<ITextEncoder>[] { () => PackagedEncoders.MiniLM(), () => PackagedEncoders.ArcticXs() })
        {
            var enc = open();
            if (enc.Identity.Sha256 == identity.Sha256) return enc;
            enc.Dispose();
        }
        throw new NotSupportedException($"The pool's captions were embedded with '{identity.Name}' (SHA-256 {identity.Sha256[..12]}), which is not packaged: build text prototypes with the same encoder through the library (ConceptPrototypes.FromText).");
    }
}
