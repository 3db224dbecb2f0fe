using MLNet.Align.Charts;

namespace MLNet.Align.Evaluation;

/// <summary>Charts of evaluation results (rendered by <see cref="Plots"/>).</summary>
internal static class EvaluationCharts
{
    /// <summary>A confusion-matrix heatmap (rows = true class, columns = predicted), counts or row-normalised.</summary>
    public static void ConfusionMatrix(string path, ZeroShotResult result, string? title = null, bool rowNormalize = false)
    {
        int c = result.Classes;
        var grid = new double[c, c];
        for (int r = 0; r < c; r++)
        {
            double total = rowNormalize ? Math.Max(1, result.Confusion[r].Sum()) : 1;
            for (int k = 0; k < c; k++) grid[r, k] = result.Confusion[r][k] / total;
        }
        Plots.Heatmap(path, grid, result.ClassNames, result.ClassNames,
            title ?? $"Confusion (top-1 {result.Top1:P1}, n = {result.N}); rows true, columns predicted",
            rowNormalize ? "0.00" : "0");
    }
}
