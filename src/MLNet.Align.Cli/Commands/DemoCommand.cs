using System.CommandLine;
using MLNet.Align.Demo;
using MLNet.Align.Demo.Data;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>`mlnet-align demo [--quick] [--out DIR]`: the whole method end to end on real data (see DemoRunner).</summary>
public sealed class DemoCommand : ICliCommand
{
    public Command Build()
    {
        var quick = new Option<bool>("--quick") { Description = "Small deterministic subset (~600 pairs, 1,000 images per labelled set); about 5 minutes." };
        var output = new Option<string>("--out") { Description = "Output folder: report.json, report.md, plots, models.", DefaultValueFactory = _ => "demo-out" };
        var data = new Option<string?>("--data") { Description = "Data folder (default OUT/data)." };
        var cache = new Option<string?>("--cache") { Description = "Embedding cache folder (default OUT/cache)." };
        var seeds = new Option<int>("--seeds") { Description = "Seeds of the default recipe.", DefaultValueFactory = _ => 3 };
        var ablation = new Option<bool>("--ablation") { Description = "Also train the ablation variants (each over the same seeds) and the data-scaling curve." };
        var scaling = new Option<bool>("--scaling") { Description = "Also fit every recipe on 10%, 30% and 100% of the training pairs (the data-scaling curve; implied by --ablation)." };
        var noInstall = new Option<bool>("--no-install") { Description = "Do not apt-get/npm install missing data; fail with the commands to run." };
        var sources = new Option<string>("--sources") { Description = $"Pair sources, comma-separated, each optionally name:fraction. Known: {string.Join(", ", SourceSelection.KnownSources)}; default {SourceSelection.DefaultList}.", DefaultValueFactory = _ => SourceSelection.DefaultList };
        var photo = new Option<string?>("--photo-pairs") { Description = "Also score every method's retrieval on this pairs file (.csv/.tsv, image + caption columns; e.g. real photos with sentence captions). Measured only: never trained on, never used for model selection." };
        var noCurate = new Option<bool>("--no-curate") { Description = "Skip stage 2 (curation) and its curated-vs-random training." };
        var cmd = new Command("demo", "Run the whole method on real data: prepare data, encode (cached), CKA, baselines, train, zero-shot, retrieval, linear probe, ML.NET zip, report.")
        { quick, output, data, cache, seeds, ablation, scaling, noInstall, sources, photo, noCurate };
        // On its own task, so that System.CommandLine's SIGINT handling waits for the token to be observed (see Program).
        cmd.SetAction((parse, ct) => Task.Run(() =>
        {
            IReadOnlyList<SourceSelection> sourceList;
            try { sourceList = SourceSelection.ParseList(parse.GetValue(sources)!); }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"error: {CliErrors.MessageOf(e)}");
                return 1;
            }
            try
            {
                return DemoRunner.Run(new DemoOptions
                {
                    Quick = parse.GetValue(quick), Out = parse.GetValue(output)!, DataDirectory = parse.GetValue(data), CacheDirectory = parse.GetValue(cache),
                    Seeds = parse.GetValue(seeds), Ablation = parse.GetValue(ablation), Scaling = parse.GetValue(scaling) || parse.GetValue(ablation), Install = !parse.GetValue(noInstall),
                    Sources = sourceList,
                    PhotoPairs = parse.GetValue(photo), Curate = !parse.GetValue(noCurate),
                }, ct);
            }
            catch (OutputLockedException e)
            {
                Console.Error.WriteLine($"error: {CliErrors.MessageOf(e)}");
                return 1;
            }
            catch (Exception e) when (e is DataPreparationException or FileNotFoundException or InvalidDataException)
            {
                Console.Error.WriteLine($"error: {CliErrors.MessageOf(e)}");
                return 2;
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine("Cancelled; cached embeddings are kept, a re-run continues from them.");
                return 130;
            }
        }, CancellationToken.None));
        return cmd;
    }
}
