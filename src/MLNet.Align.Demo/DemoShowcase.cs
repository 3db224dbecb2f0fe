using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Microsoft.ML;
using MLNet.Align.Demo.Data;
using MLNet.Align.Charts;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;

namespace MLNet.Align.Demo;

/// <summary>A class and the zip's probability for it.</summary>
public sealed record ShowcaseScore([property: JsonPropertyName("label")] string Label, [property: JsonPropertyName("score")] double Score);

/// <summary>One image of the serving showcase and what the reloaded zip said about it.</summary>
public sealed record ShowcaseRow
{
    /// <summary>The image, relative to the demo's --out folder.</summary>
    [JsonPropertyName("image")] public required string Image { get; init; }
    /// <summary>Where it comes from ("held-out openclipart", "fashion-mnist-test").</summary>
    [JsonPropertyName("origin")] public required string Origin { get; init; }
    [JsonPropertyName("true")] public required string True { get; init; }
    /// <summary>Top-1 of the reloaded zip (PredictionEngine).</summary>
    [JsonPropertyName("predicted")] public required string Predicted { get; init; }
    /// <summary>Top-1 of the in-process model on the same image (a check that the zip serves the same model).</summary>
    [JsonPropertyName("in_process_predicted")] public required string InProcessPredicted { get; init; }
    /// <summary>The zip's three best classes, best first.</summary>
    [JsonPropertyName("top3")] public required IReadOnlyList<ShowcaseScore> Top3 { get; init; }
    [JsonIgnore] public bool Correct => Predicted == True;
    [JsonIgnore] public bool InTop3 => Top3.Any(t => t.Label == True);
}

/// <summary>The showcase: how its images were chosen, what was shown and how many were right.</summary>
public sealed record ShowcaseSummary
{
    /// <summary>The classifier zip, relative to --out.</summary>
    [JsonPropertyName("zip")] public required string Zip { get; init; }
    /// <summary>How the images were chosen (fixed before any prediction).</summary>
    [JsonPropertyName("rule")] public required string Rule { get; init; }
    [JsonPropertyName("shown")] public int Shown { get; init; }
    [JsonPropertyName("top1_correct")] public int Top1Correct { get; init; }
    [JsonPropertyName("top3_correct")] public int Top3Correct { get; init; }
    /// <summary>The contact sheet, relative to --out; null when charts cannot be rendered here.</summary>
    [JsonPropertyName("contact_sheet")] public string? ContactSheet { get; init; }
}

/// <summary>
/// The demo's last step: the images a user would try on the saved zero-shot zip (held-out clip-art and photos whose
/// caption names one of the zip's classes, plus a few of the labelled test images), classified through a
/// PredictionEngine on the reloaded zip, with top-3 scores and an accuracy line computed from those predictions. The
/// images are chosen by a fixed, seeded rule before anything is predicted, never by the result.
/// </summary>
public static class DemoShowcase
{
    /// <summary>Seed of the choice.</summary>
    public const int Seed = 0;
    /// <summary>Labelled test images shown (seeded random sample).</summary>
    public const int LabelledCount = 6;

    /// <summary>An image chosen for the showcase, its true class and where it comes from.</summary>
    public sealed record Pick(string Path, int Label, string Origin);

    /// <summary>Words that name each Fashion-MNIST class in a caption (whole words, plural allowed). Kept narrow on
    /// purpose: "top" or "coat of arms" would give false truths.</summary>
    private static readonly Dictionary<string, string[]> ClassWords = new(StringComparer.OrdinalIgnoreCase)
    {
        ["T-shirt/top"] = ["t-shirt", "tshirt", "tee shirt"], ["Trouser"] = ["trouser", "pants", "jeans"], ["Pullover"] = ["pullover", "sweater"],
        ["Dress"] = ["dress"], ["Coat"] = ["coat", "overcoat", "raincoat"], ["Sandal"] = ["sandal"], ["Shirt"] = ["shirt"], ["Sneaker"] = ["sneaker", "running shoe"],
        ["Bag"] = ["bag", "handbag", "purse"], ["Ankle boot"] = ["boot", "ankle boot"],
    };

    /// <summary>The caption's head: the name before its keywords or description ("t-shirt (blue, casual, ...)" ->
    /// "t-shirt", "A polo shirt." -> "A polo shirt", "Hedgehog. Hedgehogs have a spiny coat" -> "Hedgehog"), so a
    /// word further on ("dressed", "a spiny coat") does not make a false truth.</summary>
    public static string CaptionHead(string caption)
    {
        var m = Regex.Match(caption, @"^(.*?)(\s\(|[,;:]\s|\.\s|\.$|$)", RegexOptions.CultureInvariant);
        return m.Groups[1].Value.Trim();
    }

    /// <summary>The caption's class: the one class whose words its head (<see cref="CaptionHead"/>) names, or null
    /// (none, or more than one).</summary>
    /// <param name="caption">A caption.</param>
    /// <param name="classNames">The classifier's classes; classes without a word list match their own name.</param>
    public static int? CaptionClass(string caption, IReadOnlyList<string> classNames)
    {
        caption = CaptionHead(caption);
        if (caption.Contains("coat of arms", StringComparison.OrdinalIgnoreCase)) return null;
        int? found = null;
        for (int c = 0; c < classNames.Count; c++)
        {
            var words = ClassWords.TryGetValue(classNames[c], out var w) ? w : [classNames[c]];
            // No letter or hyphen on either side: "shirt" is not found inside "t-shirt", "bag" not inside "bagel".
            if (!words.Any(x => Regex.IsMatch(caption, $@"(?<![\p{{L}}-]){Regex.Escape(x)}(s|es)?(?![\p{{L}}-])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant))) continue;
            if (found is not null) return null;
            found = c;
        }
        return found;
    }

    /// <summary>The fixed choice: per class (in class order), one held-out image whose caption's head names that class
    /// and no other (a seeded shuffle of the candidates, first one taken), then <paramref name="labelledCount"/> images of the
    /// labelled set drawn with the same seed. Nothing here looks at a prediction.</summary>
    /// <param name="heldOut">Held-out pairs (image paths resolved); several captions of one image count once.</param>
    /// <param name="classNames">The classifier's classes.</param>
    /// <param name="labelled">The labelled test set of those classes.</param>
    /// <param name="labelledName">Its name (the origin shown).</param>
    /// <param name="labelledCount">Labelled images to add.</param>
    /// <param name="seed">Seed of both draws.</param>
    public static List<Pick> Choose(IReadOnlyList<PairRecord> heldOut, IReadOnlyList<string> classNames, ImageFolderDataset labelled, string labelledName,
        int labelledCount = LabelledCount, int seed = Seed)
    {
        var byClass = new List<(string Path, string Source)>[classNames.Count];
        for (int c = 0; c < byClass.Length; c++) byClass[c] = [];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in heldOut.OrderBy(p => p.Image, StringComparer.Ordinal))
            if (CaptionClass(p.Caption, classNames) is int c && seen.Add(p.Image)) byClass[c].Add((p.Image, p.Source));
        var picks = new List<Pick>();
        var rng = new Random(seed);
        for (int c = 0; c < byClass.Length; c++)
        {
            if (byClass[c].Count == 0) continue;
            var candidates = byClass[c].ToArray();
            rng.Shuffle(candidates);
            picks.Add(new Pick(candidates[0].Path, c, $"held-out {candidates[0].Source}"));
        }
        var order = Enumerable.Range(0, labelled.Count).ToArray();
        new Random(seed).Shuffle(order);
        foreach (int i in order.Take(Math.Min(labelledCount, order.Length)))
        {
            var item = labelled.Items[i];
            int c = IndexOf(classNames, labelled.ClassNames[item.Label]);
            picks.Add(new Pick(item.Path, c, labelledName));
        }
        return picks;
    }

    private static int IndexOf(IReadOnlyList<string> names, string name)
    {
        for (int i = 0; i < names.Count; i++) if (names[i] == name) return i;
        throw new InvalidDataException($"Labelled class '{name}' is not one of the classifier's classes ({string.Join(", ", names)}).");
    }

    /// <summary>The honest summary line, computed from the rows themselves: "k of n right at top-1, m of n in the top 3".</summary>
    public static string AccuracyLine(IReadOnlyList<ShowcaseRow> rows)
    {
        int n = rows.Count, top1 = rows.Count(r => r.Correct), top3 = rows.Count(r => r.InTop3);
        return n == 0 ? "no image shown"
            : $"{top1} of {n} right at top-1 ({Math.Round(100.0 * top1 / n).ToString(CultureInfo.InvariantCulture)}%), {top3} of {n} with the true class in the top 3";
    }

    /// <summary>The caption lines of a row on the contact sheet.</summary>
    public static string[] SheetLines(ShowcaseRow r)
        => [$"truth: {r.True}", .. r.Top3.Select((t, i) => $"{i + 1}. {t.Label} {t.Score.ToString("F3", CultureInfo.InvariantCulture)}"), r.Origin];

    /// <summary>Classifies the picks with a PredictionEngine on the reloaded zip and with the in-process model (image
    /// paths as picked; <see cref="DemoOutput.RelativePaths"/> makes them relative to --out for the report).</summary>
    public static List<ShowcaseRow> Predict(MLContext ml, string zip, IReadOnlyList<Pick> picks, IReadOnlyList<string> classNames, AlignedModel model,
        ClassEmbeddings classes, IImageEncoder image)
    {
        if (picks.Count == 0) return [];
        var loaded = ml.Model.Load(zip, out _);
        using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(loaded);
        var inProcess = ZeroShotEvaluator.Evaluate(model.ProjectImages(image.EncodeBatch(picks.Select(p => p.Path).ToList()).Pooled), classes.Matrix,
            picks.Select(p => p.Label).ToArray(), classes.ClassNames);
        var rows = new List<ShowcaseRow>();
        for (int i = 0; i < picks.Count; i++)
        {
            var pred = engine.Predict(new ZeroShotImageInput { ImagePath = picks[i].Path });
            rows.Add(new ShowcaseRow
            {
                Image = picks[i].Path, Origin = picks[i].Origin, True = classNames[picks[i].Label], Predicted = pred.Label,
                InProcessPredicted = classes.ClassNames[inProcess.Predictions[i]],
                Top3 = ZeroShotModel.TopK(pred.Score, 3).Select(t => new ShowcaseScore(classes.ClassNames[t], Math.Round(pred.Score[t], 4))).ToList(),
            });
        }
        return rows;
    }

    /// <summary>Writes the contact sheet (image, truth, top-3 with scores, origin; green frame = top-1 right).</summary>
    public static void WriteSheet(string path, string outDir, IReadOnlyList<ShowcaseRow> rows, ShowcaseSummary summary)
        => Plots.ContactSheet(path, rows.Select(r => new ContactItem { Path = Path.IsPathRooted(r.Image) ? r.Image : Path.GetFullPath(Path.Combine(outDir, r.Image)), Lines = SheetLines(r), Correct = r.Correct }).ToList(),
            $"{summary.Zip} reloaded in a PredictionEngine: {AccuracyLine(rows)}",
            $"Chosen before predicting: {summary.Rule}. Green frame = top-1 right.", columns: Math.Min(8, rows.Count));
}
