using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;

namespace MLNet.Align.Recipes;

/// <summary>Settings of <see cref="RecipeSelector"/>.</summary>
public sealed record RecipeSelectionOptions
{
    /// <summary>Candidates in fitting order (default <see cref="RecipeCatalog.AutoCandidates"/>); closed-form maps
    /// must come before trained recipes that start from the best of them.</summary>
    public IReadOnlyList<AlignmentRecipe>? Candidates { get; init; }
    /// <summary>Validation data from the domain the model will serve; null = hold out <see cref="ValidationFraction"/>
    /// of the pairs (whole groups: pairs sharing an image or a caption stay on one side).</summary>
    public ValidationSet? Validation { get; init; }
    /// <summary>Fraction of the pairs held out when <see cref="Validation"/> is null, in (0, 0.5].</summary>
    public double ValidationFraction { get; init; } = 0.1;
    /// <summary>Upper bound of held-out pairs (the measure is O(n^2)).</summary>
    public int MaxValidationRows { get; init; } = 5000;
    /// <summary>Seed of the split and of every candidate.</summary>
    public int Seed { get; init; } = 42;
    /// <summary>Class label of every data row (e.g. the pairs file's label column), or null; with
    /// <see cref="EncodePrompts"/>, held-out rows are also scored by zero-shot top-1 over their labels.</summary>
    public IReadOnlyList<string?>? Labels { get; init; }
    /// <summary>Frozen text features of prompts ([P, text dim]), for zero-shot on labelled held-out rows.</summary>
    public Func<IReadOnlyList<string>, EmbeddingMatrix>? EncodePrompts { get; init; }
    /// <summary>Called with every fitted candidate before the losers are disposed (e.g. to score it on more test sets);
    /// the model must not be kept.</summary>
    public Action<AlignmentRecipe, AlignedModel, CandidateResult>? OnCandidate { get; init; }
    /// <summary>Prompt templates with "{}" for the class name.</summary>
    public IReadOnlyList<string> Templates { get; init; } = ["a photo of a {}.", "a picture of a {}.", "an image of a {}."];
}

/// <summary>One candidate's outcome.</summary>
public sealed record CandidateResult
{
    /// <summary>Recipe name.</summary>
    [JsonPropertyName("recipe")] public required string Recipe { get; init; }
    /// <summary>Closed form, relative or trained.</summary>
    [JsonPropertyName("kind")] public RecipeKind Kind { get; init; }
    /// <summary>What the recipe does.</summary>
    [JsonPropertyName("description")] public string Description { get; init; } = "";
    /// <summary>Validation figures (null when it failed).</summary>
    [JsonPropertyName("validation")] public ValidationScores? Scores { get; init; }
    /// <summary>Wall time to fit, seconds.</summary>
    [JsonPropertyName("seconds")] public double Seconds { get; init; }
    /// <summary>For trained recipes: which epoch was kept ("initial map" when training did not beat its start).</summary>
    [JsonPropertyName("kept")] public string? Kept { get; init; }
    /// <summary>Why it failed, or null.</summary>
    [JsonPropertyName("error")] public string? Error { get; init; }
}

/// <summary>What <see cref="RecipeSelector.Select"/> chose and why. Dispose it (or take <see cref="Model"/>).</summary>
public sealed class RecipeSelection : IDisposable
{
    /// <summary>The winning model (named after its recipe).</summary>
    [JsonIgnore] public AlignedModel Model { get; init; } = null!;
    /// <summary>The winning recipe's name.</summary>
    [JsonPropertyName("winner")] public required string Winner { get; init; }
    /// <summary>Why it won, in one sentence.</summary>
    [JsonPropertyName("reason")] public required string Reason { get; init; }
    /// <summary>Which validation data chose it.</summary>
    [JsonPropertyName("validation")] public required string Validation { get; init; }
    /// <summary>Every candidate, in fitting order.</summary>
    [JsonPropertyName("candidates")] public required IReadOnlyList<CandidateResult> Candidates { get; init; }
    /// <summary>The winner's training history when it is a trained recipe.</summary>
    [JsonPropertyName("history")] public TrainingHistory? History { get; init; }

    /// <summary>This report as indented JSON (<c>training.json</c> of <c>train --recipe auto</c>).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, AlignmentJson.Options);

    /// <inheritdoc/>
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// "auto": fits every candidate recipe on the user's pairs, scores each on validation data no candidate trained on
/// (<see cref="ValidationMeasure"/>), and keeps the best. Closed-form maps are fitted first (seconds); trained recipes
/// that start from a map start from the best one, and keep their initialisation when training does not beat it.
/// At small scale a closed-form map often wins; at the paper's scale trained projectors do: the user need not know.
/// </summary>
public static class RecipeSelector
{
    /// <summary>Fits and scores every candidate, returns the best.</summary>
    /// <param name="data">All pairs (features of the frozen encoders).</param>
    /// <param name="options">Candidates, validation data, seed.</param>
    /// <param name="configure">Sets the context's encoders, log, progress, cancellation and overrides (a context made
    /// with <c>with</c>-style init is passed in and the returned one used).</param>
    /// <exception cref="ArgumentException">Too few pairs or groups to hold out validation data.</exception>
    /// <exception cref="InvalidOperationException">Every candidate failed (the message lists why).</exception>
    public static RecipeSelection Select(IAlignmentDataSource data, RecipeSelectionOptions? options = null,
        Func<RecipeContext, RecipeContext>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        options ??= new RecipeSelectionOptions();
        bool tokens = data.ImageTokenDimension != null && data.TextTokenDimension != null;
        var candidates = options.Candidates ?? RecipeCatalog.AutoCandidates(tokens);
        var (train, held) = options.Validation != null ? (AllRows(data.Count), Array.Empty<long>()) : HoldOut(data, options);
        var validation = options.Validation ?? HeldOutSet(data, held, options, candidates.Any(c => c.NeedsTokens));
        var context = new RecipeContext(data, train, held, validation) { Seed = options.Seed };
        if (configure != null) context = configure(context);
        var results = new List<CandidateResult>();
        var models = new List<(AlignedModel Model, CandidateResult Result, TrainingHistory? History)>();
        try
        {
            foreach (var recipe in candidates)
            {
                context.CancellationToken.ThrowIfCancellationRequested();
                if (recipe.NeedsTokens && !tokens) continue;
                var clock = Stopwatch.StartNew();
                try
                {
                    var model = recipe.Fit(context);
                    var scores = ValidationMeasure.Evaluate(model, validation);
                    var history = recipe.Kind == RecipeKind.Trained ? context.LastHistory : null;
                    var result = new CandidateResult
                    {
                        Recipe = recipe.Name, Kind = recipe.Kind, Description = recipe.Description, Scores = scores,
                        Seconds = clock.Elapsed.TotalSeconds, Kept = history is null ? null : Kept(history),
                    };
                    results.Add(result);
                    models.Add((model, result, history));
                    options.OnCandidate?.Invoke(recipe, model, result);
                    context.Log?.Invoke($"{recipe.Name}: validation score {scores.Score:F1} ({clock.Elapsed.TotalSeconds:F1} s)");
                    if (recipe is ClosedFormRecipe cf && BestOf(models.Where(m => m.Result.Kind == RecipeKind.ClosedForm)) == result)
                    {
                        context.BestLinear = cf.Map;
                        context.BestLinearLambda = cf.Lambda;
                    }
                }
                catch (Exception e) when (candidates.Count > 1 && e is ArgumentException or ArithmeticException or TrainingDivergedException)
                {
                    // One failed candidate (a diverged run, a shape that does not fit) is reported, not fatal; bad data
                    // (InvalidDataException: a corrupt or non-finite store) stops the whole selection, and so does the
                    // failure of the only recipe asked for (its own error, unwrapped).
                    results.Add(new CandidateResult { Recipe = recipe.Name, Kind = recipe.Kind, Description = recipe.Description, Seconds = clock.Elapsed.TotalSeconds, Error = e.Message });
                    context.Log?.Invoke($"{recipe.Name}: failed: {e.Message}");
                }
            }
            if (models.Count == 0)
                throw new InvalidOperationException("Every recipe failed: " + string.Join("; ", results.Select(r => $"{r.Recipe}: {r.Error}")));
            var best = BestOf(models.Select(m => m.Result))!;
            var winner = models.Single(m => m.Result == best);
            foreach (var m in models) if (m.Model != winner.Model) m.Model.Dispose();
            models.Clear();
            models.Add(winner);
            return new RecipeSelection
            {
                Model = winner.Model, Winner = best.Recipe, Reason = Reason(best, results), Validation = validation.Description,
                Candidates = results, History = winner.History,
            };
        }
        catch
        {
            foreach (var m in models) m.Model.Dispose();
            throw;
        }
    }

    // Highest score; on a tie the earlier (simpler) candidate stays.
    private static CandidateResult? BestOf(IEnumerable<CandidateResult> results)
    {
        CandidateResult? best = null;
        foreach (var r in results)
            if (r.Scores != null && (best is null || r.Scores.Score > best.Scores!.Score)) best = r;
        return best;
    }

    private static CandidateResult? BestOf(IEnumerable<(AlignedModel, CandidateResult Result, TrainingHistory?)> models) => BestOf(models.Select(m => m.Result));

    private static string Kept(TrainingHistory h) => h.BestEpoch switch
    {
        null => "last epoch",
        < 0 => "initial map (training did not beat it)",
        int e => $"epoch {e + 1} of {h.Epochs.Count(x => x.Epoch >= 0)}",
    };

    private static string Reason(CandidateResult best, IReadOnlyList<CandidateResult> all)
    {
        static string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
        var s = best.Scores!;
        var parts = $"mean R@1 {F((s.ImageToText[0] + s.TextToImage[0]) / 2)}" + (s.ZeroShotTop1 is double z ? $", zero-shot top-1 {F(z)}" : "");
        var runnerUp = all.Where(r => r != best && r.Scores != null).OrderByDescending(r => r.Scores!.Score).FirstOrDefault();
        var text = $"{best.Recipe} has the highest validation score, {F(s.Score)} ({parts})";
        text += runnerUp is null ? "; it was the only candidate that fitted." : $", {F(s.Score - runnerUp.Scores!.Score)} points above the runner-up {runnerUp.Recipe} ({F(runnerUp.Scores.Score)}).";
        var bestTrained = all.Where(r => r.Kind == RecipeKind.Trained && r.Scores != null).OrderByDescending(r => r.Scores!.Score).FirstOrDefault();
        if (best.Kind != RecipeKind.Trained && bestTrained != null)
            text += $" The best trained recipe, {bestTrained.Recipe}, scored {F(bestTrained.Scores!.Score)} (kept: {bestTrained.Kept}): on this data training does not beat the closed-form maps.";
        return text;
    }

    private static long[] AllRows(long n)
    {
        var rows = new long[n];
        for (long i = 0; i < n; i++) rows[i] = i;
        return rows;
    }

    /// <summary>Seeded hold-out of whole groups (rows sharing an image or a caption), about
    /// <see cref="RecipeSelectionOptions.ValidationFraction"/> of the rows, at most <see cref="RecipeSelectionOptions.MaxValidationRows"/>.</summary>
    internal static (long[] Train, long[] HeldOut) HoldOut(IAlignmentDataSource data, RecipeSelectionOptions o)
    {
        if (!(o.ValidationFraction > 0 && o.ValidationFraction <= 0.5))
            throw new ArgumentException($"ValidationFraction must be in (0, 0.5], got {o.ValidationFraction}.");
        long n = data.Count;
        var ids = data.GroupIds;
        var byGroup = new Dictionary<long, List<long>>();
        for (long r = 0; r < n; r++)
        {
            long g = ids?[(int)r] ?? r;
            if (!byGroup.TryGetValue(g, out var list)) byGroup[g] = list = [];
            list.Add(r);
        }
        var groups = byGroup.Keys.Order().ToArray();
        new Random(o.Seed).Shuffle(groups);
        long target = Math.Min(o.MaxValidationRows, Math.Max(2, (long)Math.Round(n * o.ValidationFraction)));
        var held = new List<long>();
        int used = 0;
        foreach (var g in groups)
        {
            if (held.Count >= target) break;
            if (held.Count + byGroup[g].Count > o.MaxValidationRows) continue;
            held.AddRange(byGroup[g]);
            used++;
        }
        if (used < 2 || n - held.Count < 2)
            throw new ArgumentException($"The data has {n} pair(s) in {groups.Length} group(s) (pairs sharing an image or a caption): too few to hold out " +
                "at least 2 groups for validation and keep 2 pairs to fit on. Add pairs or pass validation data.");
        held.Sort();
        var set = held.ToHashSet();
        return (AllRows(n).Where(r => !set.Contains(r)).ToArray(), held.ToArray());
    }

    private static ValidationSet HeldOutSet(IAlignmentDataSource data, long[] rows, RecipeSelectionOptions o, bool withTokens)
    {
        // One batch holds every held-out row (at most MaxValidationRows), tokens padded once.
        var b = data.GetBatches(Math.Max(1, rows.Length), rows, withTokens: withTokens).Single();
        var groups = data.GroupIds is { } ids ? rows.Select(r => ids[(int)r]).ToArray() : null;
        var set = new ValidationSet
        {
            Image = b.ImagePooled, Text = b.TextPooled, ImageTokens = b.ImageTokens, TextTokens = b.TextTokens,
            Groups = groups,
            Description = $"{rows.Length} of the {data.Count} pairs held out ({100.0 * rows.Length / data.Count:F0}%, whole groups of pairs sharing an image or a caption, seed {o.Seed}); never fitted on",
        };
        if (o.Labels is { } labels && o.EncodePrompts is { } encode)
        {
            if (labels.Count != data.Count) throw new ArgumentException($"Labels has {labels.Count} entries for {data.Count} pairs.");
            var rowLabels = rows.Select(r => labels[(int)r]).ToArray();
            if (rowLabels.All(l => !string.IsNullOrWhiteSpace(l)) && rowLabels.Distinct(StringComparer.Ordinal).Count() >= 2)
                set = set.WithLabels(rowLabels!, o.Templates, encode);
        }
        return set;
    }
}
