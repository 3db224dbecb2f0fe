using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.Recipes;
using MLNet.Align.Terminal;

namespace MLNet.Align.Demo;

/// <summary>One recipe of the library on the demo's data: its validation score and its demo scores, over the seeds.</summary>
public sealed record DemoRecipeRow
{
    [JsonPropertyName("recipe")] public required string Recipe { get; init; }
    [JsonPropertyName("kind")] public required string Kind { get; init; }
    [JsonPropertyName("description")] public required string Description { get; init; }
    /// <summary>Validation score per seed (auto's measure on the held-out groups).</summary>
    [JsonPropertyName("validation_score")] public required List<double> ValidationScore { get; init; }
    /// <summary>What each seed kept (trained recipes).</summary>
    [JsonPropertyName("kept")] public required List<string?> Kept { get; init; }
    /// <summary>Demo scores per seed.</summary>
    [JsonPropertyName("scores")] public required List<MethodScores> Scores { get; init; }
    /// <summary>Mean of <see cref="Scores"/>.</summary>
    [JsonPropertyName("mean")] public required MethodScores Mean { get; init; }
}

/// <summary>One point of the data-scaling curve.</summary>
public sealed record DemoScalingPoint(
    [property: JsonPropertyName("fraction")] double Fraction,
    [property: JsonPropertyName("pairs")] int Pairs,
    [property: JsonPropertyName("recipe")] string Recipe,
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("validation_score")] double ValidationScore,
    [property: JsonPropertyName("scores")] MethodScores Scores,
    [property: JsonPropertyName("chosen")] bool Chosen);

/// <summary>`train --recipe auto` run inside the demo: every recipe over the seeds, what auto chose and why, and (with
/// --ablation) the data-scaling curve.</summary>
public sealed record DemoAutoResult
{
    [JsonPropertyName("validation")] public required string Validation { get; init; }
    [JsonPropertyName("winner_per_seed")] public required List<string> WinnerPerSeed { get; init; }
    [JsonPropertyName("reason")] public required string Reason { get; init; }
    [JsonPropertyName("rows")] public required List<DemoRecipeRow> Rows { get; init; }
    [JsonPropertyName("scaling")] public List<DemoScalingPoint>? Scaling { get; init; }
}

/// <summary>Runs the library's recipe selection on the demo's training store, scoring every candidate on the demo's
/// test sets as well (the test sets never choose anything).</summary>
public static class DemoRecipeRun
{
    /// <summary>Auto over <paramref name="seeds"/> seeds (one held-out split, seed 0; the seed moves the trained
    /// recipes' weights and batches). Returns seed 0's winner (kept) and the table.</summary>
    public static (AlignedModel Winner, DemoAutoResult Result) Run(EmbeddingStoreDataSource data, DemoEval ev, int seeds, bool quick, bool scaling,
        CancellationToken ct)
    {
        var manifest = data.Store.Manifest;
        var labels = data.Labels();
        using var text = manifest.TextEncoderSource is { } s ? s.OpenText() : MLNet.Align.Encoders.PackagedEncoders.OpenTextEncoder(manifest.TextEncoder);
        var perRecipe = new Dictionary<string, (AlignmentRecipe Recipe, List<double> Val, List<string?> Kept, List<MethodScores> Scores)>();
        var winners = new List<string>();
        AlignedModel? winner = null;
        string reason = "", validation = "";
        Func<AlignmentTrainingOptions, AlignmentTrainingOptions> overrides = t => t with { Epochs = quick ? Math.Min(t.Epochs, 10) : t.Epochs };
        for (int seed = 0; seed < seeds; seed++)
        {
            var options = new RecipeSelectionOptions
            {
                Seed = 0, Labels = labels, EncodePrompts = p => text.EncodeBatch(p, cancellationToken: ct).Pooled,
                // Closed forms do not depend on the seed: fitted and scored once.
                Candidates = seed == 0 ? null : RecipeCatalog.AutoCandidates(false).Where(r => r.Kind == RecipeKind.Trained).ToList(),
                OnCandidate = (recipe, model, result) =>
                {
                    if (!perRecipe.TryGetValue(recipe.Name, out var row)) perRecipe[recipe.Name] = row = (recipe, [], [], []);
                    row.Val.Add(result.Scores!.Score);
                    row.Kept.Add(result.Kept);
                    row.Scores.Add(ev.Score(model));
                },
            };
            var selection = CliProgress.Run($"auto, seed {seed}: {(seed == 0 ? "every recipe" : "the trained recipes")} (epochs of the trained ones, at most)",
                (options.Candidates ?? RecipeCatalog.AutoCandidates(false)).OfType<TrainedRecipe>().Sum(r => overrides(r.Training).Epochs), bar =>
            {
                int epochs = 0, last = -1;
                return RecipeSelector.Select(data, options, c => new RecipeContext(c.Data, c.TrainRows, c.HeldOutRows, c.Validation)
                {
                    Seed = seed, ImageEncoder = manifest.ImageEncoder, TextEncoder = manifest.TextEncoder,
                    ImageEncoderSource = manifest.ImageEncoderSource, TextEncoderSource = manifest.TextEncoderSource,
                    CancellationToken = ct, TrainingOverrides = overrides,
                    Progress = new Epochs(e => { if (e != last) { last = e; bar.Report(++epochs); } }),
                });
            });
            if (seed == 0)
            {
                winner = selection.Model;
                reason = selection.Reason;
                validation = selection.Validation;
                winners.Add(selection.Winner);
                Console.WriteLine($"  auto chose {selection.Winner}: {selection.Reason}");
            }
            else
            {
                // Seed s's choice among all candidates: the closed forms' seed-0 scores against this seed's trained ones.
                var best = perRecipe.Values.MaxBy(r => r.Val.Count > seed ? r.Val[seed] : r.Val[0]);
                winners.Add(best.Recipe.Name);
                selection.Dispose();
            }
        }
        var rows = perRecipe.Values.Select(r => new DemoRecipeRow
        {
            Recipe = r.Recipe.Name, Kind = r.Recipe.Kind.ToString(), Description = r.Recipe.Description,
            ValidationScore = r.Val, Kept = r.Kept, Scores = r.Scores, Mean = DemoEval.Mean(r.Scores),
        }).ToList();
        foreach (var row in rows) Console.WriteLine("  " + DemoEval.Line($"{row.Recipe} (validation {row.ValidationScore.Average():F1})", row.Mean));
        var result = new DemoAutoResult { Validation = validation, WinnerPerSeed = winners, Reason = reason, Rows = rows };
        if (scaling) result = result with { Scaling = Scaling(data, ev, labels, text, overrides, ct) };
        return (winner!, result);
    }

    /// <summary>10%, 30% and 100% of the training pairs (nested seeded subsets of the rows auto fits on), every recipe
    /// (one seed), all judged on the same held-out groups.</summary>
    private static List<DemoScalingPoint> Scaling(EmbeddingStoreDataSource data, DemoEval ev, IReadOnlyList<string?>? labels, MLNet.Align.Encoders.ITextEncoder text,
        Func<AlignmentTrainingOptions, AlignmentTrainingOptions> overrides, CancellationToken ct)
    {
        var split = new RecipeSelectionOptions { Seed = 0, Labels = labels, EncodePrompts = p => text.EncodeBatch(p, cancellationToken: ct).Pooled };
        var (train, held) = RecipeSelector.HoldOut(data, split);
        ValidationSet? validation = null;
        var stored = data.Store.LoadPooled(ct);
        var groups = data.GroupIds!;
        var order = train.ToArray();
        new Random(7).Shuffle(order);
        var points = new List<DemoScalingPoint>();
        foreach (var fraction in new[] { 0.1, 0.3, 1.0 })
        {
            var rows = order.Take(Math.Max(8, (int)Math.Round(order.Length * fraction))).Order().Select(r => (int)r).ToArray();
            // The subset and the fixed held-out rows in one in-memory source; the held-out rows are its last rows.
            var all = rows.Concat(held.Select(r => (int)r)).ToArray();
            var sub = new InMemoryAlignmentData(stored.Image.SelectRows(all), stored.Text!.SelectRows(all), groupIds: all.Select(r => groups[r]).ToArray());
            var heldInSub = Enumerable.Range(rows.Length, held.Length).Select(i => (long)i).ToArray();
            validation ??= FixedValidation(stored, held, groups, labels, split);
            var context = new RecipeContext(sub, Enumerable.Range(0, rows.Length).Select(i => (long)i).ToArray(), heldInSub, validation)
            { Seed = 0, CancellationToken = ct, TrainingOverrides = overrides };
            var local = new List<DemoScalingPoint>();
            CliProgress.Run($"data scaling: {fraction:P0} of the training pairs ({rows.Length}), every recipe", RecipeCatalog.AutoCandidates(false).Count, bar =>
            {
                int done = 0;
                foreach (var recipe in RecipeCatalog.AutoCandidates(false))
                {
                    using var model = recipe.Fit(context);
                    double score = ValidationMeasure.Evaluate(model, validation).Score;
                    if (recipe is ClosedFormRecipe cf && local.Where(p => p.Kind == nameof(RecipeKind.ClosedForm)).All(p => p.ValidationScore < score))
                        context.BestLinear = cf.Map;
                    local.Add(new DemoScalingPoint(fraction, rows.Length, recipe.Name, recipe.Kind.ToString(), score, ev.Score(model), false));
                    bar.Report(++done);
                }
            });
            var best = local.MaxBy(p => p.ValidationScore)!;
            points.AddRange(local.Select(p => p == best ? p with { Chosen = true } : p));
            Console.WriteLine($"  {fraction:P0} ({rows.Length} pairs): auto would choose {best.Recipe}; " +
                string.Join(", ", local.Select(p => $"{p.Recipe} {p.ValidationScore:F1}")));
        }
        return points;
    }

    /// <summary>The held-out rows as auto scores them: group-aware retrieval, plus zero-shot over their labels when the
    /// pairs have them (so the curve's scores are the recipes step's scores).</summary>
    private static ValidationSet FixedValidation(StoredPairs stored, long[] held, IReadOnlyList<long> groups, IReadOnlyList<string?>? labels, RecipeSelectionOptions o)
    {
        var rows = held.Select(r => (int)r).ToArray();
        var set = new ValidationSet
        {
            Image = stored.Image.SelectRows(rows), Text = stored.Text!.SelectRows(rows), Groups = rows.Select(r => groups[r]).ToArray(),
            Description = "fixed held-out groups",
        };
        var heldLabels = labels is null ? null : rows.Select(r => labels[r]).ToArray();
        return heldLabels != null && heldLabels.All(l => !string.IsNullOrWhiteSpace(l)) && heldLabels.Distinct().Count() >= 2
            ? set.WithLabels(heldLabels!, o.Templates, o.EncodePrompts!) : set;
    }

    private sealed class Epochs(Action<int> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value.Epoch);
    }
}
